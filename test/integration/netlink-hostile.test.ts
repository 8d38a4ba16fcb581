/**
 * What a reader must survive. A receive worker that dies ends its stream
 * with an error (nothing more can be read). And datagrams a process sends
 * to our netlink port are not the kernel's: a
 * process with CAP_NET_ADMIN in the namespace we watch (a container's root)
 * could otherwise forge conntrack events, or replies to our dumps. Every
 * reader (batched worker, main-thread reader, pulled request socket) drops
 * them, reports them as a warning (op `sender`, not a loss: nothing to
 * resync), and still delivers the kernel's.
 */
import { readFileSync } from 'node:fs';
import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import type { FlowgrabError } from '../../src/errors.js';
import { receiveWorkers } from '../../src/netlink/batched.js';
import { CTA_ID } from '../../src/netlink/conntrack/enums.js';
import { ctDumpRequest } from '../../src/netlink/conntrack/messages.js';
import { NETLINK_NETFILTER, NLM_F_DUMP } from '../../src/netlink/enums.js';
import { openNativeTransport } from '../../src/netlink/native.js';
import { encodeMessage } from '../../src/netlink/nlmsg.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { closeFd, openNetlinkFd, withNetns } from '../../src/netlink/syscall.js';
import type { RawTransport, TransportOptions } from '../../src/netlink/transport.js';
import { conntrack } from '../../src/sources/conntrack/source.js';
import type { SourceNotice } from '../../src/sources/notice.js';
import { floodUdpSync } from '../../src/testing/flood.js';
import { type Netns, waitFor } from '../../src/testing/lab/index.js';
import { conntrackNetns } from '../helpers/conntrack-cli.js';
import { fileLab } from '../helpers/lab.js';

let ns: Netns;
fileLab(async (lab) => {
  ns = await conntrackNetns(lab, 'forged', { 'net.netfilter.nf_conntrack_events': 1 });
});

const libc = koffi.load('libc.so.6');
const sendto = libc.func('intptr_t sendto(int, const void *, uintptr_t, int, const void *, uint32_t)');

/** A ctnetlink NEW event for 10.66.0.1 → 10.66.0.2 (tcp 31337 → 443), id 0x0f0f0f0f, as the kernel would send it. */
function forgedNew(): Buffer {
  const attr = (type: number, payload: Buffer) => {
    const b = Buffer.alloc(4 + ((payload.length + 3) & ~3));
    b.writeUInt16LE(4 + payload.length, 0);
    b.writeUInt16LE(type, 2);
    payload.copy(b, 4);
    return b;
  };
  const be32 = (v: number) => Buffer.from([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
  const be16 = (v: number) => Buffer.from([v >>> 8, v & 255]);
  const ip = attr(0x8001, Buffer.concat([attr(1, be32(0x0a420001)), attr(2, be32(0x0a420002))]));
  const proto = attr(0x8002, Buffer.concat([attr(1, Buffer.from([6])), attr(2, be16(31337)), attr(3, be16(443))]));
  const tuple = attr(0x8001, Buffer.concat([ip, proto]));
  const body = Buffer.concat([Buffer.from([2, 0, 0, 0]), tuple, attr(0x8002, tuple), attr(CTA_ID, be32(0x0f0f0f0f))]);
  // IPCTNL_MSG_CT_NEW in subsystem 1 (ctnetlink), NLM_F_CREATE|NLM_F_EXCL.
  return encodeMessage({ type: 0x100, flags: 0x600, seq: 0, pid: 0 }, body);
}

/** Sends `msg` to netlink port `port` from a socket of another "process" (a socket of our own) in the namespace. */
function sendFromProcess(port: number, msg: Buffer): void {
  const { fd } = withNetns(ns.name, () => openNetlinkFd(NETLINK_NETFILTER));
  try {
    const to = Buffer.alloc(12);
    to.writeUInt16LE(16, 0); // AF_NETLINK
    to.writeUInt32LE(port, 4);
    expect(Number(sendto(fd, msg, msg.length, 0, to, 12))).toBe(msg.length);
  } finally {
    closeFd(fd);
  }
}

/** The netlink ports of `ns`'s netfilter sockets that joined a group (event sockets), from /proc/net/netlink there. */
function eventPorts(): number[] {
  const rows = withNetns(ns.name, () => readFileSync('/proc/thread-self/net/netlink', 'utf8'));
  return rows
    .trim()
    .split('\n')
    .slice(1)
    .map((r) => r.trim().split(/\s+/)) // sk Eth Pid Groups ...
    .filter((f) => f[1] === String(NETLINK_NETFILTER) && Number.parseInt(f[3], 16) !== 0)
    .map((f) => Number(f[2]));
}

describe('netlink datagrams not sent by the kernel', () => {
  for (const batchedReceive of [true, false]) {
    it(`a forged NEW event is dropped and reported, the kernel's still arrive (${batchedReceive ? 'batched' : 'main-thread'} reader)`, async () => {
      const got: { id: number; dst: string }[] = [];
      const notices: SourceNotice[] = [];
      const sub = conntrack({
        events: ['new'],
        netns: ns.name,
        batchedReceive,
        notices: { next: (n) => notices.push(n) },
      }).subscribe((r) => got.push({ id: r.id, dst: r.orig.dst }));
      try {
        await waitFor(() => eventPorts().length === 1, { what: 'our event socket in the namespace' });
        const [port] = eventPorts();
        sendFromProcess(port, forgedNew());
        // A real event after it: once it is here, the forged one (sent first, on the same queue) has been read.
        floodUdpSync(ns.name, { count: 1, base: 77 });
        await waitFor(() => got.some((r) => r.dst.startsWith('127.77.')), {
          timeoutMs: 10_000,
          what: "the kernel's NEW event",
        });
        await waitFor(() => notices.some((n) => /not sent by the kernel/.test(n.message ?? '')), {
          timeoutMs: 10_000,
          what: 'the forged datagram reported',
        });
        expect(got.filter((r) => r.dst === '10.66.0.2')).toEqual([]);
        const note = notices.find((n) => /not sent by the kernel/.test(n.message ?? ''));
        expect(note).toMatchObject({ kind: 'warning', source: 'conntrack' });
        expect(note?.message).toContain(`1 datagram not sent by the kernel dropped`);
        // A warning, not a loss: nobody can make us resync by sending to our port.
        expect(notices.filter((n) => n.kind === 'loss')).toEqual([]);
        // More within the second are said once, at its end, even when nothing follows them.
        sendFromProcess(port, forgedNew());
        sendFromProcess(port, forgedNew());
        await waitFor(() => notices.some((n) => / 2 datagrams not sent by the kernel/.test(n.message ?? '')), {
          timeoutMs: 10_000,
          what: 'the next two reported together',
        });
        expect(notices.filter((n) => /not sent by the kernel/.test(n.message ?? ''))).toHaveLength(2);
        expect(got.filter((r) => r.dst === '10.66.0.2')).toEqual([]);
      } finally {
        sub.unsubscribe();
      }
    });
  }

  it('an oversized datagram from another process is dropped as foreign, not said as a truncated one of ours (a loss)', async () => {
    const got: string[] = [];
    const notices: SourceNotice[] = [];
    const sub = conntrack({ events: ['new'], netns: ns.name, notices: { next: (n) => notices.push(n) } }).subscribe(
      (r) => got.push(r.orig.dst),
    );
    try {
      await waitFor(() => eventPorts().length === 1, { what: 'our event socket in the namespace' });
      const [port] = eventPorts();
      // 40 KiB: past the batched reader's 32 KiB datagram.
      sendFromProcess(port, encodeMessage({ type: 0x100, flags: 0, seq: 0, pid: 0 }, Buffer.alloc(40 * 1024)));
      floodUdpSync(ns.name, { count: 1, base: 78 });
      await waitFor(() => got.some((d) => d.startsWith('127.78.')), {
        timeoutMs: 10_000,
        what: "the kernel's NEW event",
      });
      await waitFor(() => notices.some((n) => /not sent by the kernel/.test(n.message ?? '')), {
        timeoutMs: 10_000,
        what: 'the oversized datagram reported as foreign',
      });
      expect(notices.filter((n) => n.kind === 'loss' || /truncated/.test(n.message ?? ''))).toEqual([]);
    } finally {
      sub.unsubscribe();
    }
  });

  // The pool reads only while a request waits: it gets the forged reply queued before the dump. A worker reads
  // that one alone, and another sent while the kernel builds the dump (some 20 parts) between two parts, where
  // it leaves a slot of its ring to skip (read in place, recv-worker.ts).
  const dumpReaders: [string, Partial<TransportOptions>, number][] = [
    ['pool', { pulled: true }, 1],
    ['worker, in place', { batched: true, fullDatagrams: true, lingerMs: 0 }, 2],
  ];
  for (const [reader, how, forged] of dumpReaders) {
    it(`a forged reply queued on a request socket is dropped; the dump is the kernel’s (${reader})`, async () => {
      floodUdpSync(ns.name, { count: 2000, base: 79 });
      let port = 0;
      const open = (o: TransportOptions) => {
        const t = openNativeTransport(o);
        port = t.port;
        return t;
      };
      const sock = NetlinkSocket.open({ protocol: NETLINK_NETFILTER, netns: ns.name, ...how }, open);
      const errors: Error[] = [];
      sock.onError((e) => errors.push(e));
      const said = () =>
        errors.reduce(
          (n, e) => n + Number(/(\d+) datagrams? not sent by the kernel dropped/.exec(e.message)?.[1] ?? 0),
          0,
        );
      try {
        sendFromProcess(port, forgedNew());
        const req = ctDumpRequest({ family: 2 });
        const ids: number[] = [];
        const dumped = sock.request(req.type, NLM_F_DUMP, req.payload, {
          op: 'dump',
          onPayload: (b, start, end) => {
            // CTA_ID of the entry (after the 4-byte nfgenmsg).
            for (let o = start + 4; o + 4 <= end; o += (b.readUInt16LE(o) + 3) & ~3) {
              if ((b.readUInt16LE(o + 2) & 0x7fff) === CTA_ID) ids.push(b.readUInt32BE(o + 4));
              if (b.readUInt16LE(o) < 4) break;
            }
          },
        });
        if (forged > 1) sendFromProcess(port, forgedNew());
        await dumped;
        expect(ids.length).toBeGreaterThanOrEqual(2000);
        expect(ids).not.toContain(0x0f0f0f0f);
        // Said at once, and more within the same second at that second's end (perhaps after the dump's).
        await waitFor(() => said() >= forged, { timeoutMs: 10_000, what: `${forged} forged datagrams said` });
        expect(said()).toBe(forged);
        expect(errors.every((e) => (e as FlowgrabError).op === 'sender')).toBe(true);
      } finally {
        sock.close();
      }
    });
  }

  it('a receive worker that dies ends the stream with an error, instead of leaving it silent', async () => {
    const transports: RawTransport[] = [];
    const errors: Error[] = [];
    // terminate() from outside takes effect when the idle worker's poll(2) returns: a short one here.
    const pollTimeout = receiveWorkers.pollTimeoutMs;
    receiveWorkers.pollTimeoutMs = 200;
    const sub = conntrack({
      events: ['new'],
      netns: ns.name,
      transport: (o) => {
        const t = openNativeTransport(o);
        transports.push(t);
        return t;
      },
    }).subscribe({ error: (e) => errors.push(e as Error) });
    try {
      const [events] = transports;
      // The worker reading the event socket, ended from outside (as a crash would end it).
      const worker = (events as unknown as { worker?: { terminate(): Promise<number> } }).worker;
      expect(worker).toBeDefined();
      await worker?.terminate();
      await waitFor(() => errors.length === 1, { timeoutMs: 10_000, what: 'the stream to end with an error' });
      expect(errors[0]).toMatchObject({ code: 'FG_ERR_NETLINK', message: 'receive worker exited' });
    } finally {
      receiveWorkers.pollTimeoutMs = pollTimeout;
      sub.unsubscribe();
    }
  });
});
