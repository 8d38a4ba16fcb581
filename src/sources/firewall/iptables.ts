/**
 * NFQUEUE rules of flowgrab's own, through iptables-nft (nft's `queue`
 * statement needs CONFIG_NFT_QUEUE, which this kernel lacks; the xt NFQUEUE
 * target works through nft_compat). A user chain `FLOWGRAB-Q<n>` in the
 * filter table of iptables and ip6tables holds the NFQUEUE rule; the
 * built-in chains jump to it. Every rule carries the owner tag as a comment,
 * so a chain left by a killed process is recognised as stale and replaced
 * (never duplicated) in one iptables-restore transaction; a chain whose
 * owner still runs is refused. Removal deletes only what this process owns.
 */
import { FlowgrabError } from '../../errors.js';
import { runTool } from './exec.js';
import { isSelf, type Owner, ownerAlive, ownerTag, parseOwnerTag } from './owner.js';

export type QueueFamily = 'ipv4' | 'ipv6';
export type QueueBuiltinChain = 'INPUT' | 'OUTPUT' | 'FORWARD';

export interface QueueRulesSpec {
  queue: number;
  /** Built-in chains that jump to the queue chain (inserted first, ahead of other rules). */
  chains: QueueBuiltinChain[];
  /** Extra iptables match arguments for the NFQUEUE rule, one argv word each. */
  match?: string[];
  /** Default both. */
  families?: QueueFamily[];
  netns?: string;
}

const TOOL = { ipv4: 'iptables', ipv6: 'ip6tables' } as const;
const NFT_FAMILY = { ipv4: 'ip', ipv6: 'ip6' } as const;
const FAMILIES: QueueFamily[] = ['ipv4', 'ipv6'];
const CHAIN_RE = /^FLOWGRAB-Q(\d+)$/;

export const queueChainName = (queue: number): string => `FLOWGRAB-Q${queue}`;

// Words go into an iptables-restore script unquoted: no spaces, quotes, '#' or newlines can get in.
const WORD = /^[A-Za-z0-9_.:/,!+=@-]{1,256}$/;
const FORBIDDEN = new Set(
  '-j --jump -g --goto -A --append -I --insert -D --delete -R --replace -N --new-chain -X --delete-chain -F --flush -P --policy -E --rename-chain -Z --zero -t --table -L --list -S --list-rules -C --check'.split(
    ' ',
  ),
);

/** What is wrong with extra match arguments (empty when fine): they may only match, never act. */
export function validateMatchArgs(args: readonly string[]): string[] {
  const problems: string[] = [];
  for (const a of args) {
    if (!WORD.test(a)) problems.push(`${JSON.stringify(a)} is not a plain iptables word (letters, digits, _.:/,!+=@-)`);
    else if (FORBIDDEN.has(a)) problems.push(`${a} is not a match option (flowgrab adds the target and the chain)`);
  }
  return problems;
}

interface ChainState {
  exists: boolean;
  /** `-A CHAIN … -j FLOWGRAB-Qn` lines of the built-in chains, as `iptables -S` prints them. */
  jumps: string[];
  /** Owners named by the chain's rules and jumps. */
  owners: Owner[];
}

async function listRules(family: QueueFamily, netns?: string): Promise<string[]> {
  const r = await runTool([TOOL[family], '-w', '-t', 'filter', '-S'], { netns });
  return r.stdout.split('\n');
}

function chainState(lines: string[], chain: string): ChainState {
  const target = new RegExp(` -[jg] ${chain}(\\s|$)`);
  const jumps = lines.filter((l) => l.startsWith('-A ') && target.test(l));
  const owners: Owner[] = [];
  for (const l of [...jumps, ...lines.filter((x) => x.startsWith(`-A ${chain} `))]) {
    const o = parseOwnerTag(l);
    if (o) owners.push(o);
  }
  return { exists: lines.includes(`-N ${chain}`), jumps, owners };
}

const restore = (family: QueueFamily, lines: string[], netns?: string) =>
  runTool([`${TOOL[family]}-restore`, '-w', '--noflush'], { netns, input: `*filter\n${lines.join('\n')}\nCOMMIT\n` });

/** Restore lines that delete the queue chain and every jump to it. */
function removal(s: ChainState, chain: string): string[] {
  const out = s.jumps.map((j) => j.replace(/^-A /, '-D '));
  if (s.exists) out.push(`-F ${chain}`, `-X ${chain}`);
  return out;
}

async function tableExists(family: QueueFamily, netns?: string): Promise<boolean> {
  try {
    return (
      (await runTool(['nft', 'list', 'table', NFT_FAMILY[family], 'filter'], { netns, allowFail: true })).code === 0
    );
  } catch {
    return true; // no nft binary: never delete the table
  }
}

/** Deletes the filter table iptables-nft made for us, when nothing but empty accept-policy chains is left in it. */
async function dropEmptyTable(family: QueueFamily, netns?: string): Promise<void> {
  const r = await runTool(['nft', '-j', 'list', 'table', NFT_FAMILY[family], 'filter'], { netns, allowFail: true });
  if (r.code !== 0) return;
  const items = (JSON.parse(r.stdout) as { nftables: Record<string, { hook?: string; policy?: string }>[] }).nftables;
  const empty = items.every((i) => 'metainfo' in i || 'table' in i || (i.chain?.hook && i.chain.policy === 'accept'));
  if (empty) await runTool(['nft', 'delete', 'table', NFT_FAMILY[family], 'filter'], { netns, allowFail: true });
}

export class IptablesQueueRules {
  private removed = false;

  private constructor(
    readonly spec: QueueRulesSpec,
    readonly chain: string,
    /** Families whose filter table did not exist before we installed. */
    private readonly createdTables: QueueFamily[],
  ) {}

  static async install(spec: QueueRulesSpec): Promise<IptablesQueueRules> {
    const problems = validateMatchArgs(spec.match ?? []);
    if (problems.length)
      throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `NFQUEUE rule match: ${problems.join('; ')}`);
    const chain = queueChainName(spec.queue);
    const families = spec.families ?? FAMILIES;
    const states = new Map<QueueFamily, ChainState>();
    for (const f of FAMILIES) {
      let s: ChainState;
      try {
        s = chainState(await listRules(f, spec.netns), chain);
      } catch (err) {
        if (families.includes(f)) throw err;
        continue; // a family we do not queue may lack its tool
      }
      const other = s.owners.find((o) => ownerAlive(o) && !isSelf(o));
      if (other) {
        throw new FlowgrabError(
          'FG_ERR_BUSY',
          `${TOOL[f]} chain ${chain} (NFQUEUE queue ${spec.queue}) belongs to running process ${other.pid}`,
          { op: TOOL[f] },
        );
      }
      states.set(f, s);
    }
    const rules = new IptablesQueueRules({ ...spec, families }, chain, []);
    try {
      for (const [f, s] of states) await rules.installFamily(f, s, families.includes(f));
    } catch (err) {
      await rules.remove().catch(() => {});
      throw err;
    }
    return rules;
  }

  private async installFamily(f: QueueFamily, s: ChainState, wanted: boolean): Promise<void> {
    const { chain, spec } = this;
    if (!wanted) {
      // A stale chain for a family we no longer queue goes too.
      if (s.exists || s.jumps.length) await restore(f, removal(s, chain), spec.netns);
      return;
    }
    if (!(await tableExists(f, spec.netns))) this.createdTables.push(f);
    const tag = `"${ownerTag()}"`;
    const match = (spec.match ?? []).join(' ');
    // `:CHAIN` creates the chain, or flushes a stale one, and stale jumps go: one transaction, never a duplicate.
    await restore(
      f,
      [
        `:${chain} - [0:0]`,
        ...s.jumps.map((j) => j.replace(/^-A /, '-D ')),
        `-A ${chain} ${match ? `${match} ` : ''}-m comment --comment ${tag} -j NFQUEUE --queue-num ${spec.queue} --queue-bypass`,
        ...spec.chains.map((c) => `-I ${c} 1 -m comment --comment ${tag} -j ${chain}`),
      ],
      spec.netns,
    );
  }

  /** Deletes our jumps and chain (idempotent); rules another live owner took over are left alone. */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    const errors: unknown[] = [];
    for (const f of this.spec.families ?? FAMILIES) {
      try {
        const s = chainState(await listRules(f, this.spec.netns), this.chain);
        if (s.owners.some((o) => !isSelf(o) && ownerAlive(o))) continue;
        if (s.exists || s.jumps.length) await restore(f, removal(s, this.chain), this.spec.netns);
        if (this.createdTables.includes(f)) await dropEmptyTable(f, this.spec.netns);
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length) {
      const msg = errors.map((e) => (e as Error).message).join('; ');
      throw new FlowgrabError('FG_ERR_FIREWALL', `removing ${this.chain}: ${msg}`, {
        op: 'iptables',
        cause: errors[0],
      });
    }
  }
}

/**
 * Deletes every FLOWGRAB-Q<n> chain (and its jumps) whose owner process is gone; returns "ipv4 FLOWGRAB-Q3"-style
 * names. The filter table stays, even when this leaves it empty: between a look and a delete another process may
 * put its rules there (adding rules does not change the table's handle, so no guard tells), and under
 * iptables-legacy the nft table of that name is not even the one the chain was in.
 */
export async function sweepStaleQueueChains(netns?: string): Promise<string[]> {
  const swept: string[] = [];
  for (const f of FAMILIES) {
    let lines: string[];
    try {
      lines = await listRules(f, netns);
    } catch {
      continue; // no such tool here: nothing of ours in that family
    }
    for (const l of lines) {
      const chain = /^-N (\S+)$/.exec(l)?.[1];
      if (!chain || !CHAIN_RE.test(chain)) continue;
      const s = chainState(lines, chain);
      if (s.owners.some(ownerAlive)) continue;
      await restore(f, removal(s, chain), netns);
      swept.push(`${f} ${chain}`);
    }
  }
  return swept;
}
