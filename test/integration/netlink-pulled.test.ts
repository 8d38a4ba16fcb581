/**
 * The pulled transport (request sockets read on libuv's thread pool, one
 * read ahead of the decoding) against the real kernel: a dump of many parts
 * arrives whole, once and in order, with acks on the same socket; a reply
 * that comes after a read found nothing is still read (the bounded poll);
 * and close() — idle, waiting, or in the middle of a dump — rejects what
 * waits, delivers nothing more and closes the fds.
 */
import { closeSync, openSync, readdirSync } from 'node:fs';
import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import { AttrReader } from '../../src/netlink/attr.js';
import { CTA_ID, NFNLGRP_CONNTRACK_NEW } from '../../src/netlink/conntrack/enums.js';
import { ctDumpRequest } from '../../src/netlink/conntrack/messages.js';
import { NETLINK_NETFILTER, NETLINK_ROUTE, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_NOOP } from '../../src/netlink/enums.js';
import { openOwnSocket } from '../../src/netlink/fd-transport.js';
import { openNativeTransport } from '../../src/netlink/native.js';
import { encodeMessage } from '../../src/netlink/nlmsg.js';
import { POOL_CALLS, poolCalls } from '../../src/netlink/pulled.js';
import { RTM_GETLINK } from '../../src/netlink/rtnl/enums.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import type { RawTransport, TransportOptions } from '../../src/netlink/transport.js';
import { deleteConntrackTuple } from '../../src/sources/conntrack/delete.js';
import { floodUdpSync } from '../../src/testing/flood.js';
import { type Netns, waitFor } from '../../src/testing/lab/index.js';
import { conntrackNetns, kernelIds } from '../helpers/conntrack-cli.js';
import { fileLab } from '../helpers/lab.js';
import { newEventsOfFlood } from '../helpers/netlink-events.js';
import { socketFds } from '../helpers/netlink-proc.js';

const FLOWS = 10_000;
let ns: Netns;

fileLab(async (lab) => {
  ns = await conntrackNetns(lab, 'pulled', { 'net.netfilter.nf_conntrack_events': 1 });
  floodUdpSync(ns.name, { count: FLOWS, base: 3 });
});

/** The native transport, counting the datagrams it delivers. */
function counting(): { open: (o: TransportOptions) => RawTransport; datagrams: () => number } {
  let n = 0;
  return {
    open: (o) => {
      const t = openNativeTransport(o);
      const set = t.setHandlers.bind(t);
      t.setHandlers = (h) =>
        set({
          ...h,
          datagram: (b, g, tr) => {
            n++;
            h.datagram(b, g, tr);
          },
        });
      return t;
    },
    datagrams: () => n,
  };
}

/** The CTA_ID of one conntrack message read in place (its attributes follow the 4-byte nfgenmsg). */
function idAt(b: Buffer, start: number, end: number): number {
  const a = new AttrReader('test').reset(b, start + 4, end);
  while (a.next()) if (a.type() === CTA_ID) return a.u32be();
  return -1;
}

/** A conntrack dump on `sock` read in place: the entries' ids in the order they came. */
async function dumpIds(sock: NetlinkSocket): Promise<number[]> {
  const req = ctDumpRequest({ family: 2 });
  const ids: number[] = [];
  await sock.request(req.type, NLM_F_DUMP, req.payload, {
    op: 'dump',
    onPayload: (b, start, end) => ids.push(idAt(b, start, end)),
  });
  return ids;
}

describe('pulled netlink transport', () => {
  it('reads a dump of many parts whole and once, twice in a row, with an ack between, then closes its fds', async () => {
    const before = socketFds().length;
    const c = counting();
    const sock = NetlinkSocket.open(
      { protocol: NETLINK_NETFILTER, netns: ns.name, pulled: true, recvBufferBytes: 1 << 20 },
      c.open,
    );
    const errors: Error[] = [];
    sock.onError((e) => errors.push(e));
    try {
      const kernel = await kernelIds(ns.name); // sorted; ids may repeat (they collide now and then)
      const first = await dumpIds(sock);
      // Many datagrams: more than the two sets of 16 hold, so each set was read into more than once.
      expect(c.datagrams()).toBeGreaterThan(2 * 16);
      expect(first.length).toBeGreaterThanOrEqual(FLOWS);
      // Each entry once: the same ids as `conntrack -L`, as many times each.
      expect([...first].sort((a, b) => a - b)).toEqual(kernel);

      // A request answered by an ack only, on the same socket, between two dumps.
      await expect(
        deleteConntrackTuple(
          { protonum: 17, src: '10.99.0.1', dst: '10.99.0.2', sport: 1, dport: 1 },
          { netns: ns.name },
        ),
      ).resolves.toBe(0);
      const again = await dumpIds(sock);
      expect(again).toEqual(first); // the same table, in the kernel's order both times
      expect(errors).toEqual([]);
    } finally {
      sock.close();
    }
    await waitFor(() => socketFds().length === before, { timeoutMs: 10_000, what: 'the socket fds closed' });
    expect(() => sock.send(0, 0, Buffer.alloc(4))).toThrow(/closed/);
  });

  it('reads a reply that comes after a read found nothing, and close() while it waits closes the fds', async () => {
    const before = socketFds().length;
    const t = openNativeTransport({ protocol: NETLINK_NETFILTER, netns: ns.name, pulled: true });
    const got: Buffer[] = [];
    let waiting = true;
    t.setHandlers({ datagram: (b) => got.push(Buffer.from(b)), error: () => {}, waiting: () => waiting });
    // A NOOP without NLM_F_ACK gets no answer: the first read finds nothing and the transport polls.
    t.addMembership(NFNLGRP_CONNTRACK_NEW);
    t.send(encodeMessage({ type: NLMSG_NOOP, flags: NLM_F_REQUEST, seq: 1, pid: 0 }, Buffer.alloc(0)));
    expect(got).toEqual([]);
    // What comes later (a NEW event of a flow made now) is read once the poll sees it.
    floodUdpSync(ns.name, { count: 1, base: 40 });
    await waitFor(() => got.length > 0, { timeoutMs: 10_000, what: 'the late datagram read' });
    expect(got[0].readUInt16LE(4)).toBe(0x100); // IPCTNL_MSG_CT_NEW of ctnetlink
    // Still waiting: the transport polls again; close() wakes that poll and the fds close.
    t.close();
    await waitFor(() => socketFds().length === before, { timeoutMs: 10_000, what: 'the socket fds closed' });
    // Events made now reach another socket of the group, and not the closed one.
    const n = got.length;
    const other = NetlinkSocket.open(
      { protocol: NETLINK_NETFILTER, netns: ns.name, batched: true },
      openNativeTransport,
    );
    try {
      await newEventsOfFlood(other, ns.name, { count: 5, base: 41 }, "the other socket's 5 NEW events");
    } finally {
      other.close();
    }
    expect(got.length).toBe(n);
    waiting = false;
  });

  it('close() in the middle of a dump rejects it, delivers nothing more and closes the fds', async () => {
    const before = socketFds().length;
    const sock = NetlinkSocket.open(
      { protocol: NETLINK_NETFILTER, netns: ns.name, pulled: true, recvBufferBytes: 1 << 20 },
      openNativeTransport,
    );
    const req = ctDumpRequest({ family: 2 });
    let seen = 0;
    let after = 0;
    const done = sock.request(req.type, NLM_F_DUMP, req.payload, {
      op: 'dump',
      onPayload: () => {
        if (sock.isClosed) after++;
        else if (++seen === 100) sock.close();
      },
    });
    await expect(done).rejects.toMatchObject({ code: 'FG_ERR_CLOSED' });
    expect(seen).toBe(100);
    await waitFor(() => socketFds().length === before, { timeoutMs: 10_000, what: 'the socket fds closed' });
    expect(after).toBe(0);
  });

  it('a read that fails in the middle of a dump fails the request with its cause at once, not at its idle timeout', async () => {
    // The socket's fd becomes /dev/null (dup2) while the dump is read: the next recvmmsg fails (ENOTSOCK).
    const dup2 = koffi.load('libc.so.6').func('int dup2(int, int)') as (a: number, b: number) => number;
    let fd = -1;
    const sock = NetlinkSocket.open(
      { protocol: NETLINK_NETFILTER, netns: ns.name, pulled: true, recvBufferBytes: 1 << 20 },
      (o) => {
        const t = openNativeTransport(o);
        fd = (t as unknown as { fd: number }).fd;
        return t;
      },
    );
    const errors: Error[] = [];
    sock.onError((e) => errors.push(e));
    const req = ctDumpRequest({ family: 2 });
    let seen = 0;
    try {
      const done = sock.request(req.type, NLM_F_DUMP, req.payload, {
        op: 'dump',
        idleTimeoutMs: 20_000,
        onPayload: () => {
          if (++seen !== 100) return;
          const nul = openSync('/dev/null', 'r');
          try {
            expect(dup2(nul, fd)).toBe(fd);
          } finally {
            closeSync(nul);
          }
        },
      });
      // The read's own error, not the idle timeout's (FG_ERR_TIMEOUT, which the old code gave after 20 s).
      await expect(done).rejects.toMatchObject({ code: 'FG_ERR_NETLINK', op: 'recvmsg', errno: 88 });
      expect(seen).toBeGreaterThanOrEqual(100);
      expect(seen).toBeLessThan(FLOWS);
      expect(errors.map((e) => e.message)).toContain('recvmmsg: ENOTSOCK');
      // The next request fails at once too, at its send (the fd is no socket now): nothing is left waiting.
      await expect(dumpIds(sock)).rejects.toMatchObject({ op: 'sendmsg', errno: 88 });
    } finally {
      sock.close();
    }
  });

  it(`${POOL_CALLS * 10} requests at once, each on its own socket, queue for the pool: none fails, every fd closes`, async () => {
    // koffi refuses a 257th async call in flight (it throws); the pulled reader runs at most POOL_CALLS at once.
    const before = socketFds().length;
    const n = POOL_CALLS * 10;
    let peak = 0;
    const results = await Promise.allSettled(
      Array.from({ length: n }, async () => {
        const s = NetlinkSocket.open({ protocol: NETLINK_ROUTE, netns: ns.name, pulled: true }, openNativeTransport);
        try {
          // An RTM_GETLINK dump of the namespace's links (lo): one part and DONE.
          const replies = await s.request(RTM_GETLINK, NLM_F_DUMP, Buffer.alloc(16), {
            op: 'getlink',
            idleTimeoutMs: 30_000,
          });
          peak = Math.max(peak, poolCalls().running);
          return replies.length;
        } finally {
          s.close();
        }
      }),
    );
    const failed = results
      .filter((r) => r.status === 'rejected')
      .map((r) => String((r as PromiseRejectedResult).reason));
    expect(failed).toEqual([]);
    expect(results.every((r) => r.status === 'fulfilled' && r.value >= 1)).toBe(true);
    expect(peak).toBeLessThanOrEqual(POOL_CALLS);
    await waitFor(() => socketFds().length === before && poolCalls().running === 0, {
      timeoutMs: 20_000,
      what: 'every socket closed and the pool idle',
    });
    expect(poolCalls()).toEqual({ running: 0, queued: 0 });
  });

  it('a transport that fails while it is made leaves no fd open (the socket and the eventfd close again)', () => {
    const before = readdirSync('/proc/self/fd').length;
    const fail = (what: string) => () => {
      throw new Error(what);
    };
    expect(() => openOwnSocket({ protocol: NETLINK_ROUTE, netns: ns.name }, () => {}, fail('constructor'))).toThrow(
      'constructor',
    );
    expect(() => openOwnSocket({ protocol: NETLINK_ROUTE, netns: ns.name }, fail('setsockopt'), () => 0)).toThrow(
      'setsockopt',
    );
    expect(readdirSync('/proc/self/fd').length).toBe(before);
  });
});
