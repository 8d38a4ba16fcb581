/**
 * The core's start-up: the previous run's nodes, lists and blocks restored
 * from the store (and enforced), and the messages a new subscriber gets.
 */
import { parseEntry } from '../domain/lists.js';
import { listMessage, nodeInfoMessage, serverRestartMessage } from '../domain/messages.js';
import type { SpinNode } from '../domain/model.js';
import type { SpinMessage } from '../io/contract.js';
import { refillIgnore } from './lists.js';
import type { CoreParts } from './parts.js';

/** Restores the previous run and enforces its lists and blocks at once. */
export async function restore(c: CoreParts): Promise<void> {
  await c.router.refresh(true).catch((err) => c.log(`router addresses: ${(err as Error).message}`));
  for (const s of c.store.nodes()) c.model.restore(s.id, s);
  c.model.reserveIds(c.store.lastId());
  const stored = c.store.lists();
  for (const { list, entry } of stored) {
    const e = parseEntry(entry);
    if (e && c.lists[list]) c.lists[list].add(e);
  }
  if (!stored.some((r) => r.list === 'ignore') && c.store.lastId() === 0) await refillIgnore(c);
  c.blocks.restore(c.store);
  c.announcer.pending.clear();
  await c.enforcer.apply();
}

export function startupMessages(
  c: CoreParts,
  nodeJson: (n: SpinNode) => { id: number } & Record<string, unknown>,
): SpinMessage[] {
  const msgs = [serverRestartMessage()];
  for (const l of ['block', 'ignore', 'allow'] as const) msgs.push(listMessage(l, c.lists[l].texts()));
  for (const n of c.model.nodes()) if (!c.isIgnored(n)) msgs.push(nodeInfoMessage(nodeJson(n)));
  return msgs;
}
