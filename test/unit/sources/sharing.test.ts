/**
 * One shared-feed helper for every source (src/sources/sharing.ts): the
 * whole config decides the feed. The same config shares one socket; on a
 * resource the kernel gives one reader (an NFLOG group, an NFQUEUE queue)
 * another config is FG_ERR_BUSY naming what differs, never the first
 * subscriber's config silently; plain listeners (conntrack, arp) get a
 * feed per config.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NLM_F_ACK } from '../../../src/netlink/enums.js';
import { arp, arpFeedRefs } from '../../../src/sources/arp/source.js';
import { conntrack, conntrackFeedRefs } from '../../../src/sources/conntrack/source.js';
import { dns, dnsFeedRefs } from '../../../src/sources/dns/source.js';
import { nfqueue, nfqueueFeedRefs } from '../../../src/sources/nfqueue/source.js';
import { SharedFeeds } from '../../../src/sources/sharing.js';
import { sourcesTornDown } from '../../../src/sources/teardown.js';
import { ackReply, dumpReply, FakeKernel } from '../../../src/testing/fake-netlink.js';
import { waitFor } from '../../../src/testing/lab/netns.js';

/** A kernel that ACKs whatever asks for one and answers dumps with nothing. */
function ackingKernel(): FakeKernel {
  const k = new FakeKernel();
  k.handler = (req) => [req.flags & NLM_F_ACK ? ackReply(req) : dumpReply(req, 0x100, [])];
  return k;
}

const subs: { unsubscribe(): void }[] = [];
afterEach(async () => {
  for (const s of subs.splice(0)) s.unsubscribe();
  await Promise.all([sourcesTornDown(), sourcesTornDown()]);
});

/** Subscribes and collects errors (a conflict arrives as the subscriber's error). */
function watch(src: { subscribe(o: { next(): void; error(e: unknown): void }): { unsubscribe(): void } }) {
  const errors: (Error & { code?: string })[] = [];
  subs.push(src.subscribe({ next: () => {}, error: (e) => errors.push(e as Error) }));
  return errors;
}

describe('shared feeds: the whole config decides', () => {
  it('dns: the same config (hooks in any order) shares one socket', () => {
    const k = ackingKernel();
    const opts = { installRules: false, group: 9, transport: k.transport };
    const a = watch(dns({ ...opts, hooks: ['input', 'forward'] }));
    const b = watch(dns({ ...opts, hooks: ['forward', 'input'] }));
    expect([a, b]).toEqual([[], []]);
    expect(k.openSockets).toHaveLength(1);
    expect(dnsFeedRefs({ ...opts, hooks: ['input', 'forward'] })).toBe(2);
  });

  it('dns: another config on the same NFLOG group is FG_ERR_BUSY naming what differs', async () => {
    const k = ackingKernel();
    const opts = { installRules: false, transport: k.transport };
    const a = watch(dns({ ...opts, hooks: ['input'] }));
    const b = watch(dns({ ...opts, hooks: ['forward'], queryTimeoutMs: 60_000 }));
    expect(a).toEqual([]);
    expect(b).toHaveLength(1);
    expect(b[0]).toMatchObject({ code: 'FG_ERR_BUSY' });
    expect(b[0].message).toBe(
      'NFLOG group 53 in this namespace is already open in this process with other options: ' +
        'hooks ["input"] ≠ ["forward"], queryTimeoutMs 30000 ≠ 60000',
    );
    expect(k.openSockets).toHaveLength(1);
    expect(dnsFeedRefs(opts)).toBe(1);
    // Another group is another resource: no conflict.
    expect(watch(dns({ ...opts, group: 54, hooks: ['forward'] }))).toEqual([]);
    expect(k.openSockets).toHaveLength(2);
  });

  it('nfqueue: another config on the same queue is FG_ERR_BUSY naming what differs', async () => {
    const k = ackingKernel();
    const opts = { queue: 4, interfaceNames: false, transport: k.transport };
    const first = nfqueue(opts);
    const a = watch(first);
    await first.ready();
    const b = watch(nfqueue({ ...opts, maxLen: 7 }));
    expect(a).toEqual([]);
    expect(b[0]).toMatchObject({ code: 'FG_ERR_BUSY' });
    expect(b[0].message).toMatch(
      /^NFQUEUE queue 4 in this namespace is already open .* other options: maxLen 1024 ≠ 7$/,
    );
    expect(nfqueueFeedRefs(opts)).toBe(1);
  });

  it('conntrack: a different config gets its own socket with its own options; the same shares', () => {
    const k = ackingKernel();
    const opts = { transport: k.transport };
    watch(conntrack({ ...opts, events: ['new', 'destroy'], recvBufferBytes: 1 << 20 }));
    watch(conntrack({ ...opts, events: ['destroy', 'new'], recvBufferBytes: 1 << 20, setAccounting: false }));
    watch(conntrack({ ...opts, events: ['new', 'destroy'], recvBufferBytes: 2 << 20 }));
    expect(k.openSockets.map((s) => s.options.recvBufferBytes)).toEqual([1 << 20, 2 << 20]);
    expect(conntrackFeedRefs({ ...opts, events: ['destroy', 'new'], recvBufferBytes: 1 << 20 })).toBe(2);
  });

  it('arp: a different receive buffer is another feed (it was silently the first one’s)', async () => {
    const k = ackingKernel();
    const opts = { transport: k.transport, dump: false, events: true };
    watch(arp({ ...opts, recvBufferBytes: 1 << 20 }));
    watch(arp({ ...opts, recvBufferBytes: 1 << 20, dump: true }));
    watch(arp({ ...opts, recvBufferBytes: 3 << 20 }));
    const eventSockets = () => k.openSockets.filter((s) => s.groups.size > 0);
    await waitFor(() => eventSockets().length === 2, { timeoutMs: 5_000, what: 'two event sockets' });
    expect(eventSockets().map((s) => s.options.recvBufferBytes)).toEqual([1 << 20, 3 << 20]);
    expect(arpFeedRefs({ ...opts, recvBufferBytes: 1 << 20 })).toBe(2);
  });

  it('the helper keeps feeds per transport and disposes a feed with its last subscriber', () => {
    const disposed: string[] = [];
    const feeds = new SharedFeeds<{ n: number; tag?: string }, string>({
      what: 'test',
      perSubscriber: ['tag'],
      exclusive: (c) => `thing ${c.n}`,
      open: (c, _t, key) => `feed ${c.n} ${key}`,
      dispose: (f) => disposed.push(f),
    });
    const t1 = {};
    const t2 = {};
    const a = feeds.acquire({ n: 1, tag: 'a' }, t1);
    const b = feeds.acquire({ n: 1, tag: 'b' }, t1);
    const c = feeds.acquire({ n: 1 }, t2);
    expect(a.value).toBe(b.value);
    expect(c.value).not.toBe(a.value);
    expect(feeds.refs({ n: 1 })).toBe(3);
    expect(() => feeds.acquire({ n: 1, extra: true } as never, t1)).toThrow(/thing 1 .* extra \(unset\) ≠ true/);
    a.release();
    b.release();
    b.release(); // twice is once
    expect(disposed).toEqual([a.value]);
    c.release();
    expect(feeds.refs({ n: 1 })).toBe(0);
  });
});
