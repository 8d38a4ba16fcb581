/**
 * A firewall table of flowgrab's own (`nft`), named so a person recognises
 * it (`flowgrab_dns_g5`) and tagged with its owner process. Installing
 * replaces a stale table left by a killed process in one atomic
 * transaction (never a duplicate); a table whose owner still runs is
 * refused. Removal is idempotent.
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

/** An nft table owned by this process (owner-tagged, replaced atomically, removed on close). */
export class NftTable {
  private removed = false;

  private constructor(
    readonly family: NftTableSpec['family'],
    readonly name: string,
    readonly netns: string | undefined,
  ) {}

  /** The owner tag of an existing table, or undefined when there is no such table. */
  static async owner(family: string, name: string, netns?: string): Promise<{ exists: boolean; tag?: string }> {
    const r = await runTool(['nft', 'list', 'table', family, name], { netns, allowFail: true });
    if (r.code !== 0) return { exists: false };
    const m = /^\s*comment "([^"]*)"/m.exec(r.stdout);
    return { exists: true, tag: m?.[1] };
  }

  /** Installs the table in one nft transaction, replacing one left by a dead owner; refuses one whose owner runs. */
  static async install(spec: NftTableSpec): Promise<NftTable> {
    const name = tableName(spec.name);
    const { exists, tag } = await NftTable.owner(spec.family, name, spec.netns);
    const owner = parseOwnerTag(tag);
    if (exists && owner && ownerAlive(owner) && !isSelf(owner)) {
      throw new FlowgrabError(
        'FG_ERR_BUSY',
        `nft table ${spec.family} ${name} belongs to running process ${owner.pid}`,
        { op: 'nft' },
      );
    }
    // Declaring the table first makes the delete valid whether or not it existed: one atomic swap.
    const script = [
      `table ${spec.family} ${name}`,
      `delete table ${spec.family} ${name}`,
      `table ${spec.family} ${name} {`,
      `  comment "${ownerTag()}"`,
      spec.body,
      '}',
      '',
    ].join('\n');
    await runTool(['nft', '-f', '-'], { netns: spec.netns, input: script });
    return new NftTable(spec.family, name, spec.netns);
  }

  /** Runs more nft commands against this table (e.g. set elements); `{T}` stands for `family name`. */
  async apply(script: string): Promise<void> {
    await runTool(['nft', '-f', '-'], {
      netns: this.netns,
      input: script.replaceAll('{T}', `${this.family} ${this.name}`),
    });
  }

  /** Deletes the table (idempotent). */
  async remove(): Promise<void> {
    if (this.removed) return;
    this.removed = true;
    await runTool(['nft', 'delete', 'table', this.family, this.name], { netns: this.netns, allowFail: true });
  }
}

/**
 * Deletes every flowgrab table whose tagged owner process is gone (dead pid,
 * or the pid now runs another process: start time differs); returns their
 * names. An untagged table is not ours to judge and stays.
 */
export async function sweepStaleTables(netns?: string): Promise<string[]> {
  const r = await runTool(['nft', 'list', 'tables'], { netns, allowFail: true });
  const swept: string[] = [];
  for (const m of r.stdout.matchAll(/^table (\S+) (flowgrab_\w+)$/gm)) {
    const [, family, name] = m;
    const { tag } = await NftTable.owner(family, name, netns);
    const owner = parseOwnerTag(tag);
    if (!owner || ownerAlive(owner)) continue;
    await runTool(['nft', 'delete', 'table', family, name], { netns, allowFail: true });
    swept.push(`${family} ${name}`);
  }
  return swept;
}
