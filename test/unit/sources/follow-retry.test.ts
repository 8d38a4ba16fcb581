/**
 * The one dump/follow/resync engine (src/sources/follow.ts): a resync dump
 * that fails is retried until one succeeds, for arp and conntrack alike,
 * so neither stays out of sync after loss.
 */
import { describe, expect, it } from 'vitest';
import type { CtEntry } from '../../../src/netlink/conntrack/entry.js';
import { encodeCtMessage } from '../../../src/netlink/conntrack/messages.js';
import { encodeMessage, type NetlinkMessage } from '../../../src/netlink/nlmsg.js';
import * as R from '../../../src/netlink/rtnl/enums.js';
import { encodeLink, type LinkEntry } from '../../../src/netlink/rtnl/link.js';
import { encodeNeigh, type NeighEntry } from '../../../src/netlink/rtnl/neigh.js';
import { arp } from '../../../src/sources/arp/source.js';
import { conntrack } from '../../../src/sources/conntrack/source.js';
import { ackReply, dumpReply, FakeKernel } from '../../../src/testing/fake-netlink.js';
import { waitFor } from '../../../src/testing/lab/netns.js';
import { briefCt, collect } from '../../helpers/collect.js';

const EBUSY = 16;

const ct = (id: number): CtEntry => ({
  family: 2,
  orig: { src: '10.0.0.2', dst: '10.0.0.9', protonum: 17, sport: 40000 + id, dport: 53 },
  reply: { src: '10.0.0.9', dst: '10.0.0.2', protonum: 17, sport: 53, dport: 40000 + id },
  status: 0x8,
  id,
});
const ctEvent = (e: CtEntry, type: 'new' | 'destroy' = 'new'): Buffer => {
  const m = encodeCtMessage(type, e);
  return encodeMessage({ type: m.type, flags: m.flags, seq: 0, pid: 0 }, m.payload);
};

/** A dump reply to `req` holding `table`. */
const tableReply = (req: NetlinkMessage, table: CtEntry[]) =>
  dumpReply(
    req,
    0x100,
    table.map((e) => encodeCtMessage('dump', e).payload),
  );

/** NEW and DESTROY events of `k`'s conntrack, collected (loss checked every 10 ms). */
const follow = (k: FakeKernel) =>
  collect(
    (hooks) => conntrack({ events: ['new', 'destroy'], lossCheckMs: 10, transport: k.transport, ...hooks }),
    briefCt,
  );

const link = (index: number, name: string): LinkEntry => ({
  family: 0,
  type: 1,
  index,
  flags: R.IFF_UP,
  change: 0,
  name,
});
const neigh = (dst: string, lladdr: string): NeighEntry => ({
  family: 2,
  ifindex: 2,
  state: R.NUD_REACHABLE,
  flags: 0,
  type: R.RTN_UNICAST,
  dst,
  lladdr,
});

describe('resync after loss is retried until it succeeds', () => {
  it('conntrack: the first resync dump fails, the retry resyncs (records and notices)', async () => {
    const table = [ct(1), ct(2)];
    const k = new FakeKernel();
    let failNext = false;
    let dumps = 0;
    k.handler = (req: NetlinkMessage) => {
      dumps++;
      if (failNext) {
        failNext = false;
        return [ackReply(req, EBUSY)];
      }
      return [tableReply(req, table)];
    };
    const { recs, notices, unsubscribe } = follow(k);
    k.multicast(1, ctEvent(ct(1)));
    k.multicast(1, ctEvent(ct(2)));
    await waitFor(() => recs.length === 2, { timeoutMs: 5_000, what: 'two NEW events' });
    // Entry 2 ends while the socket overflows; the first resync dump is refused.
    table.splice(1, 1);
    failNext = true;
    k.openSockets[0].overflow(1);
    await waitFor(() => notices.some((n) => n.kind === 'resync'), { timeoutMs: 5_000, what: 'a resync' });
    unsubscribe();
    expect(dumps).toBe(2);
    // The host's own nf_conntrack_events setting may add a warning first: not this test's subject.
    const mine = notices.filter((n) => !n.message.startsWith('nf_conntrack'));
    expect(mine.map((n) => n.kind)).toEqual(['loss', 'warning', 'resync']);
    expect(mine[1].message).toMatch(/^resync dump failed: .*; retrying in \d+ ms$/);
    expect(mine[2]).toMatchObject({ source: 'conntrack', count: 1 });
    expect(recs).toEqual(['new:1', 'new:2', 'dump:1:resync', 'destroy:2:resync']);
  });

  it('arp: the first resync dump fails, the retry resyncs (records and notices)', async () => {
    const links = [link(1, 'lo'), link(2, 'br0')];
    const before = [neigh('192.168.77.11', '02:00:00:00:77:11')];
    // Unseen by events (the socket overflowed): a neighbour arrived after the first (priming) dump.
    const after = [...before, neigh('192.168.77.12', '02:00:00:00:77:12')];
    const k = new FakeKernel();
    let linkDumps = 0;
    let neighDumps = 0;
    k.handler = (req: NetlinkMessage) => {
      if (req.type === R.RTM_GETLINK) {
        // The second link dump (the first resync's) is refused.
        if (++linkDumps === 2) return [ackReply(req, EBUSY)];
        return [dumpReply(req, R.RTM_NEWLINK, links.map(encodeLink))];
      }
      if (req.payload[0] === 7) return [dumpReply(req, R.RTM_NEWNEIGH, [])];
      const rows = ++neighDumps === 1 ? before : after;
      return [dumpReply(req, R.RTM_NEWNEIGH, rows.map(encodeNeigh))];
    };
    const { recs, notices, unsubscribe } = collect(
      (hooks) => arp({ dump: false, events: true, lossCheckMs: 10, transport: k.transport, ...hooks }),
      (r) => `${r.type}:${r.ip}${r.resync ? ':resync' : ''}`,
    );
    await waitFor(() => neighDumps === 1, { timeoutMs: 5_000, what: 'the priming dump' });
    const events = k.openSockets.find((s) => s.groups.has(R.RTNLGRP_NEIGH));
    if (!events) throw new Error('no event socket');
    events.overflow(2);
    await waitFor(() => notices.some((n) => n.kind === 'resync'), { timeoutMs: 5_000, what: 'a resync' });
    unsubscribe();
    expect([linkDumps, neighDumps]).toEqual([3, 2]);
    expect(notices.map((n) => n.kind)).toEqual(['loss', 'warning', 'resync']);
    expect(notices[1].message).toMatch(/^resync dump failed: .*; retrying in \d+ ms$/);
    expect(notices[2]).toMatchObject({ source: 'arp', count: 2 });
    expect(recs).toEqual(['new:192.168.77.12:resync']);
  });
});

describe('a resync reads the table after the events read before it', () => {
  it('conntrack: a DESTROY the reader still held back when loss was found ends its entry once, before the dump', async () => {
    const table = [ct(1), ct(2)];
    const k = new FakeKernel();
    k.handler = (req: NetlinkMessage) => [tableReply(req, table)];
    const { recs, notices, unsubscribe } = follow(k);
    try {
      k.multicast(1, ctEvent(ct(1)));
      k.multicast(1, ctEvent(ct(2)));
      await waitFor(() => recs.length === 2, { timeoutMs: 5_000, what: 'two NEW events' });
      // Entry 2 ends; its DESTROY was read but is still held back by the reader when the socket overflows.
      table.splice(1, 1);
      const events = k.openSockets[0];
      events.holdBack(ctEvent(ct(2), 'destroy'), 1 << 2);
      events.overflow(1);
      await waitFor(() => notices.some((n) => n.kind === 'resync'), { timeoutMs: 5_000, what: 'a resync' });
      events.releaseHeldBack(); // a reader that never delivered it before the dump would deliver it now
      await k.settle();
      // Its real DESTROY, before the dump: without deliverPending the dump read the table first and inferred it.
      expect(recs).toEqual(['new:1', 'new:2', 'destroy:2', 'dump:1:resync']);
    } finally {
      unsubscribe();
    }
  });
});
