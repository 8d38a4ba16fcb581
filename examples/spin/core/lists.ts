/**
 * The list commands of the core: each updates the lists (and the node),
 * persists, enforces and announces.
 */
import { SpinError } from '../domain/errors.js';
import { type Prefix, parsePrefix } from '../domain/ip.js';
import { type ListEntry, type ListName, parseEntry } from '../domain/lists.js';
import { listMessage } from '../domain/messages.js';
import { type CoreParts, type ListChange, RPC_LIMITS } from './parts.js';

/** Puts a node's addresses (and, but for `ignore`, its names) on a list or takes them off. */
export async function listNode(c: CoreParts, list: ListName, id: number, add: boolean, how: ListChange): Promise<void> {
  const n = c.node(id, -2);
  if (add && list === 'block')
    await refuseRouterCut(
      c,
      [...n.ips].map((ip) => parsePrefix(ip)!),
      how.force,
    );
  const l = c.lists[list];
  const entries = [...n.ips].map((ip) => parseEntry(ip, false)!);
  // Beyond spind: a node's names join the list too, so its addresses follow DNS (issue #36).
  if (list !== 'ignore') for (const d of n.domains) entries.push(parseEntry(d)!);
  if (add) checkRoom(c, list, entries.length);
  for (const e of entries) {
    if (add) l.add(e);
    else l.remove(e);
  }
  if (list === 'block') n.isBlocked = add;
  if (list === 'allow') n.isExcepted = add;
  if (add) n.persistent++;
  else n.persistent = Math.max(0, n.persistent - 1);
  c.model.touch(n);
  saveList(c, list);
  c.syncStore();
  await afterListChange(c, list, how.as ?? list);
}

/** Puts an address, a prefix or a DNS name on a list. */
export async function addToList(c: CoreParts, list: ListName, text: string, how: ListChange): Promise<void> {
  const e = entry(text);
  if (list === 'block' && e.kind === 'ip') await refuseRouterCut(c, [e.prefix], how.force);
  checkRoom(c, list, 1);
  c.lists[list].add(e);
  await listChanged(c, list, how.as ?? list);
}

export async function removeFromList(c: CoreParts, list: ListName, text: string, how: ListChange): Promise<void> {
  c.lists[list].remove(entry(text));
  await listChanged(c, list, how.as ?? list);
}

/** The ignore list becomes the router's own addresses (and those given at start) again. */
export async function resetIgnoreList(c: CoreParts): Promise<void> {
  await refillIgnore(c);
  broadcastList(c, 'ignore', 'ignore');
}

export async function refillIgnore(c: CoreParts): Promise<void> {
  const own = await c.opts.ownAddresses();
  c.lists.ignore.clear();
  for (const a of own) {
    const e = parseEntry(a, false);
    if (e) c.lists.ignore.add(e);
  }
  saveList(c, 'ignore');
}

function entry(text: string): ListEntry {
  const e = parseEntry(text);
  if (!e) throw new SpinError('Invalid IP address');
  return e;
}

function checkRoom(c: CoreParts, list: ListName, more: number): void {
  if (c.lists[list].size + more > RPC_LIMITS.listEntries)
    throw new SpinError(`The ${list} list is full (at most ${RPC_LIMITS.listEntries} entries)`);
}

/** Refuses a block that would cut the router (loopback, its own addresses, too wide) unless forced. */
async function refuseRouterCut(c: CoreParts, prefixes: Prefix[], force = false): Promise<void> {
  if (force) return;
  await c.router.refresh();
  for (const p of prefixes) {
    const why = c.router.reason(p);
    if (why) throw new SpinError(`Refused: ${why} (add "force": 1 to block it anyway)`, -3);
  }
}

async function listChanged(c: CoreParts, list: ListName, as: string): Promise<void> {
  saveList(c, list);
  await afterListChange(c, list, as);
}

/** Name addresses follow the list, the kernel enforces it, and everyone hears of it. */
async function afterListChange(c: CoreParts, list: ListName, as: string): Promise<void> {
  if (list !== 'ignore') {
    for (const key of c.lists[list].domainKeys()) c.blocks.seed(list, key);
    c.store.saveNameAddrs(list, c.blocks.prune(list));
    await c.enforcer.enforce();
  }
  c.flushNodeInfo();
  broadcastList(c, list, as);
}

function saveList(c: CoreParts, list: ListName): void {
  c.store.saveList(
    list,
    c.lists[list].all().map((e) => e.text),
  );
}

/** Broadcasts a list under the name the caller used (spind's behaviour). */
function broadcastList(c: CoreParts, list: ListName, as: string): void {
  c.announcer.emit(listMessage(as, c.lists[list].texts()));
}
