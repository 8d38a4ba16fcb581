/**
 * A firewall table of flowgrab's own (`nft`), named so a person recognises
 * it (`flowgrab_dns_g5`) and tagged with its owner process. Installing
 * replaces a stale table left by a killed process in one atomic
 * transaction (never a duplicate); a table whose owner still runs is
 * refused. Removal is idempotent and deletes only the table we made.
 */
import { FlowgrabError } from '../../errors.js';
import { runTool } from './exec.js';
import { isSelf, ownerAlive, ownerTag, parseOwnerTag } from './owner.js';

/** The family, name and ruleset of an NftTable. */
export interface NftTableSpec {
  family: 'inet' | 'ip' | 'ip6' | 'bridge' | 'netdev';
  /** Letters, digits and underscores; prefixed with `flowgrab_` when not already. */
  name: string;
  /** The table's contents in nft syntax (chains, sets, rules), without the `table … { }` around them. */
  body: string;
  netns?: string;
}

const NAME = /^[A-Za-z0-9_]+$/;

export function tableName(name: string): string {
  if (!NAME.test(name))
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `bad nft table name ${JSON.stringify(name)}`, { op: 'nft' });
  return name.startsWith('flowgrab_') ? name : `flowgrab_${name}`;
}

/** What `nft -a list table` says of a table: whether it exists, its owner tag, its handle. */
interface TableState {
  exists: boolean;
  tag?: string;
  /** The kernel's handle for this table: never reused in the namespace, so a replaced table has another. */
  handle?: number;
}

async function tableState(family: string, name: string, netns?: string): Promise<TableState> {
  const r = await runTool(['nft', '-a', 'list', 'table', family, name], { netns, allowFail: true });
  if (r.code !== 0) return { exists: false };
  const tag = /^\s*comment "([^"]*)"/m.exec(r.stdout)?.[1];
  const handle = /^table \S+ \S+ \{ # handle (\d+)/m.exec(r.stdout)?.[1];
  return { exists: true, tag, handle: handle === undefined ? undefined : Number(handle) };
}

/**
 * nft's error when the table changed under us (another process made, replaced or deleted it): our guarded
 * delete or our create failed (runTool joins nft's lines with " | ").
 */
const RACED =
  /Could not process rule: (No such file or directory|File exists) \| (delete table \S+ handle \d+|create table )/;
/** Installs tried before giving up when other processes keep changing the table between our look and our swap. */
const INSTALL_TRIES = 5;

/**
 * An nft table owned by this process (owner-tagged, replaced atomically, removed on close). Every change
 * names the table by the handle it was seen with: a table another process made or replaced in between has
 * another handle, and the transaction fails whole instead of deleting it (two processes racing for one
 * name never delete each other's table; the loser looks again and finds a live owner).
 */
export class NftTable {
  private removed = false;

  private constructor(
    readonly family: NftTableSpec['family'],
    readonly name: string,
    readonly netns: string | undefined,
    /** The handle of the table we made. */
    private readonly handle: number | undefined,
  ) {}

  /** Installs the table in one nft transaction, replacing one left by a dead owner; refuses one whose owner runs. */
  static async install(spec: NftTableSpec): Promise<NftTable> {
    const name = tableName(spec.name);
    for (let attempt = 1; ; attempt++) {
      const st = await tableState(spec.family, name, spec.netns);
      const owner = parseOwnerTag(st.tag);
      if (st.exists && owner && ownerAlive(owner) && !isSelf(owner)) {
        throw new FlowgrabError(
          'FG_ERR_BUSY',
          `nft table ${spec.family} ${name} belongs to running process ${owner.pid}`,
          { op: 'nft' },
        );
      }
      // One transaction: the table seen (by handle) goes and ours comes, or, when there was none, ours is
      // created only if nobody made one meanwhile. (`create table` takes the comment only: nft 1.0.6 drops the
      // chains of a `create` block without a word, so they follow in a block of their own.)
      const script = [
        // After the guarded delete, the name is declared and deleted again: nft's own cache then knows the name
        // is gone (deleted by handle alone, it merged the new sets' elements with the old table's and failed).
        ...(st.exists
          ? [
              `delete table ${spec.family} handle ${st.handle}`,
              `table ${spec.family} ${name}`,
              `delete table ${spec.family} ${name}`,
            ]
          : []),
        `create table ${spec.family} ${name} { comment "${ownerTag()}"; }`,
        `table ${spec.family} ${name} {`,
        spec.body,
        '}',
        '',
      ].join('\n');
      let echoed: string;
      try {
        // --echo --handle: nft prints what the transaction made, our table's handle with it.
        echoed = (await runTool(['nft', '-e', '-a', '-f', '-'], { netns: spec.netns, input: script })).stdout;
      } catch (err) {
        if (attempt < INSTALL_TRIES && RACED.test((err as Error).message)) continue;
        throw err;
      }
      // The last table of that name the transaction made: replacing a stale one first makes (and deletes) a
      // transient one. "create" where the kernel's notice says NLM_F_EXCL, "add" on kernels that do not set it.
      const echoes = [
        ...echoed.matchAll(new RegExp(`^(?:create|add) table ${spec.family} ${name}\\b.*# handle (\\d+)$`, 'gm')),
      ];
      const handle = echoes.at(-1)?.[1];
      if (handle !== undefined) return new NftTable(spec.family, name, spec.netns, Number(handle));
      const made = await tableState(spec.family, name, spec.netns); // an nft that echoes nothing
      return new NftTable(spec.family, name, spec.netns, made.tag === ownerTag() ? made.handle : undefined);
    }
  }

  /** Runs more nft commands against this table (e.g. set elements); `{T}` stands for `family name`. */
  async apply(script: string): Promise<void> {
    await runTool(['nft', '-f', '-'], {
      netns: this.netns,
      input: script.replaceAll('{T}', `${this.family} ${this.name}`),
    });
  }

  /** Deletes the table (idempotent): the one we made, never one another process put in its place since. */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    if (this.handle === undefined) return; // another process replaced it as we made it: not ours to delete
    await deleteByHandle(this.family, this.handle, this.netns);
  }
}

/** Deletes the table with that handle, if it is still there (true when it was). */
async function deleteByHandle(family: string, handle: number, netns?: string): Promise<boolean> {
  const r = await runTool(['nft', 'delete', 'table', family, 'handle', String(handle)], { netns, allowFail: true });
  return r.code === 0;
}

/**
 * Deletes every flowgrab table whose tagged owner process is gone (dead pid,
 * or the pid now runs another process: start time differs); returns their
 * names. An untagged table is not ours to judge and stays. Each is deleted by
 * the handle it was judged by: one a live process made meanwhile stays.
 * Tables named in `keep` stay too: the caller is about to install them, and
 * install replaces a stale one in one transaction (deleted first, a firewall
 * would let everything through until it is made again).
 */
export async function sweepStaleTables(netns?: string, keep: readonly string[] = []): Promise<string[]> {
  const r = await runTool(['nft', 'list', 'tables'], { netns, allowFail: true });
  const kept = new Set(keep.map(tableName));
  const swept: string[] = [];
  for (const m of r.stdout.matchAll(/^table (\S+) (flowgrab_\w+)$/gm)) {
    const [, family, name] = m;
    if (kept.has(name)) continue;
    const st = await tableState(family, name, netns);
    const owner = parseOwnerTag(st.tag);
    if (!owner || ownerAlive(owner) || st.handle === undefined) continue;
    if (await deleteByHandle(family, st.handle, netns)) swept.push(`${family} ${name}`);
  }
  return swept;
}
