/**
 * The node commands of the core (rename, addresses, blocked pairs), the
 * names followed through DNS, and what the model's merges and deletions
 * make the core persist and announce.
 */
import { SpinError } from '../domain/errors.js';
import { canonicalIp, domainKey } from '../domain/ip.js';
import { clearNodeMessage, nodeDeletedMessage, nodeMergedMessage } from '../domain/messages.js';
import type { SpinNode } from '../domain/model.js';
import { nameKey } from '../domain/names.js';
import { type CoreParts, RPC_LIMITS } from './parts.js';

/** A user name for a node (by MAC for devices, else by each address), kept across restarts. */
export function renameNode(c: CoreParts, id: number, name: string): void {
  const n = c.node(id);
  const text = name.slice(0, 128);
  n.name = text;
  const keys = n.mac ? [n.mac] : [...n.ips].map((ip) => nameKey(ip)!).filter(Boolean);
  for (const k of keys) c.names.setUser(k, text);
  c.store.setName(keys, text);
  c.model.touch(n);
  c.flushNodeInfo();
}

/** Gives a node another address; node 0 makes a new node of it (at most RPC_LIMITS.rpcNodes live). */
export function addNodeIp(c: CoreParts, id: number, address: string): void {
  const ip = canonicalIp(address);
  if (!ip) throw new SpinError('Not a valid IP address');
  if (c.model.ofIp(ip)) throw new SpinError('IP address already assigned to a node');
  if (id === 0) {
    // Nodes made by callers are counted while they live: node=0 cannot grow the model without bound.
    for (const n of c.rpcNodes) if (!c.model.get(n)) c.rpcNodes.delete(n);
    if (c.rpcNodes.size >= RPC_LIMITS.rpcNodes)
      throw new SpinError(`Too many nodes added by RPC (at most ${RPC_LIMITS.rpcNodes})`);
    c.rpcNodes.add(c.model.learn({ ips: [ip] }).id);
  } else {
    const n = c.node(id);
    if (n.ips.size >= RPC_LIMITS.nodeIps) throw new SpinError(`Node has ${RPC_LIMITS.nodeIps} addresses already`);
    c.model.addIp(n, ip);
  }
  c.flushNodeInfo();
  // Stored now: a blocked node's new address must survive a kill before the next periodic sync.
  c.syncStore();
}

/** Blocks or unblocks traffic between two nodes, persisted and enforced. */
export async function setPair(c: CoreParts, a: number, b: number, block: boolean): Promise<void> {
  if (block && c.blocks.pairs.size >= RPC_LIMITS.blockedPairs)
    throw new SpinError(`Too many blocked flows (at most ${RPC_LIMITS.blockedPairs})`);
  const changed = c.blocks.setPair(a, b, block);
  if (!changed) return;
  for (const n of changed) c.dirty.add(n);
  c.syncStore();
  c.store.savePairs([...c.blocks.pairs.values()]);
  await c.enforcer.enforce();
}

/** An answer for a listed name: its address joins the name set until the TTL runs out (persisted, enforced). */
export function followNames(c: CoreParts, names: string[], ip: string, exp: number): void {
  for (const list of ['block', 'allow'] as const) {
    const name = c.blocks.follow(list, names, ip, exp);
    if (name === undefined) continue;
    c.store.putNameAddr(list, domainKey(name), ip, exp);
    c.enforcer.nameAddress(list, ip, exp);
  }
}

export function onMerged(c: CoreParts, id: number, into: SpinNode): void {
  c.flushNodeInfo();
  c.announcer.emit(nodeMergedMessage(id, into.id));
  c.announcer.emit(clearNodeMessage(id));
  c.deletedIds.add(id);
  c.dirty.add(into);
  if (c.blocks.mergePairs(id, into)) {
    c.syncStore();
    c.store.savePairs([...c.blocks.pairs.values()]);
    if (!c.closed()) c.enforcer.schedule();
  }
}

export function onDeleted(c: CoreParts, n: SpinNode): void {
  c.announcer.pending.delete(n);
  c.dirty.delete(n);
  c.flushNodeInfo();
  c.announcer.emit(nodeDeletedMessage(n.id));
  c.announcer.emit(clearNodeMessage(n.id));
  c.deletedIds.add(n.id);
}
