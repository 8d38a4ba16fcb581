/**
 * The network namespaces a daemon put firewall objects in (its clients' dns()
 * tables, NFQUEUE chains), kept in `<socket>.netns` so that the next daemon on
 * that socket sweeps what a killed one left there: a stale DNS table in
 * another namespace went on logging to an NFLOG group nobody read until some
 * client asked for the same group. Only these namespaces are swept, never
 * every one on the machine (other programs' stale objects are theirs to judge).
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { graphNodes } from '../auth/paths.js';
import type { GraphSpec } from '../filters/spec.js';
import { sweepStaleQueueChains } from '../sources/firewall/iptables.js';
import { sweepStaleTables } from '../sources/firewall/nft.js';
import { NETNS_NAME } from '../sources/schema.js';
import type { LogFn } from './host.js';

/** A namespace name worth keeping: what `ip netns` names one with, within a sane length. */
const recordable = (n: string) => n.length <= 64 && NETNS_NAME.test(n);

/** Namespaces remembered at most (the oldest are forgotten). */
export const MAX_RECORDED_NETNS = 1024;

export class NetnsRecord {
  private readonly names: Set<string>;

  constructor(private readonly file: string) {
    this.names = new Set(readNames(file));
  }

  /** The namespaces recorded (by this daemon or a previous one) that still exist. */
  existing(): string[] {
    return [...this.names].filter((n) => existsSync(`/run/netns/${n}`));
  }

  /** Records the namespaces a graph's nodes name (`netns=`); writes the file when one is new. */
  noteGraph(g: GraphSpec | undefined): void {
    if (!g) return;
    let added = false;
    for (const { node } of graphNodes(g.root))
      if (typeof node.params.netns === 'string') added = this.add(node.params.netns) || added;
    if (added) this.save();
  }

  /** Records one namespace (the queue's); writes the file when it is new. */
  note(name: string): void {
    if (this.add(name)) this.save();
  }

  private add(name: string): boolean {
    if (!recordable(name) || this.names.has(name)) return false;
    this.names.add(name);
    if (this.names.size > MAX_RECORDED_NETNS) this.names.delete(this.names.values().next().value as string);
    return true;
  }

  private save(): void {
    const tmp = `${this.file}.tmp`;
    try {
      writeFileSync(tmp, `${JSON.stringify([...this.names])}\n`, { mode: 0o600 });
      renameSync(tmp, this.file);
    } catch {
      // Best effort: without the record the next daemon sweeps only its own namespace, as before.
    }
  }
}

function readNames(file: string): string[] {
  try {
    const v: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return Array.isArray(v) ? v.filter((n): n is string => typeof n === 'string' && recordable(n)) : [];
  } catch {
    return [];
  }
}

/**
 * Sweeps stale firewall objects (tables, NFQUEUE chains whose owner process is gone) in the daemon's own
 * namespace and in those an earlier daemon on this socket recorded: a killed one's stay there otherwise.
 */
export async function sweepRecorded(record: NetnsRecord, log: LogFn): Promise<void> {
  for (const netns of [undefined, ...record.existing()]) {
    const fields = netns ? { netns } : {};
    const swept = await sweepStaleTables(netns).catch(() => []);
    if (swept.length) log('info', 'stale firewall tables removed', { ...fields, tables: swept.join(', ') });
    const chains = await sweepStaleQueueChains(netns).catch(() => []);
    if (chains.length) log('info', 'stale NFQUEUE chains removed', { ...fields, chains: chains.join(', ') });
  }
}
