/**
 * The batched receive transport (a worker thread draining our own netlink
 * socket) against the real kernel: it opens in a namespace, joins groups,
 * answers dumps, delivers every event of a flood made while the main thread
 * was blocked (the worker drains meanwhile), reports the kernel's drop
 * counter and receive buffer, and its close() has closed the fd when it
 * returns, so an NFLOG group or NFQUEUE queue is free again at once.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { receiveWorkers } from '../../src/netlink/batched.js';
import { NFNLGRP_CONNTRACK_NEW } from '../../src/netlink/conntrack/enums.js';
import { ctDumpRequest, decodeCtMessage } from '../../src/netlink/conntrack/messages.js';
import { NETLINK_NETFILTER, NLM_F_DUMP } from '../../src/netlink/enums.js';
import { openNativeTransport } from '../../src/netlink/native.js';
import { NFLOG_CONFIG_TYPE, nflogBind } from '../../src/netlink/nflog/config.js';
import { NFQUEUE_CONFIG_TYPE, nfqBind } from '../../src/netlink/nfqueue/config.js';
import type { NetlinkMessage } from '../../src/netlink/nlmsg.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { dns } from '../../src/sources/dns/source.js';
import { sourcesTornDown } from '../../src/sources/teardown.js';
import { floodUdpSync } from '../../src/testing/flood.js';
import { type Netns, waitFor } from '../../src/testing/lab/index.js';
import { conntrackNetns, kernelIds } from '../helpers/conntrack-cli.js';
import { DIST } from '../helpers/daemon.js';
import { fileLab } from '../helpers/lab.js';
import { newEventsOfFlood } from '../helpers/netlink-events.js';
import { socketFds } from '../helpers/netlink-proc.js';

const FLOWS = 5_000;
let ns: Netns;

fileLab(async (lab) => {
  ns = await conntrackNetns(lab, 'batched', { 'net.netfilter.nf_conntrack_events': 1 });
});

describe('batched netlink receive', () => {
  it('a flood of DNS packets never keeps the event loop from its timers (nor from SIGTERM)', async () => {
    const got = { n: 0 };
    const sub = dns({ netns: ns.name }).subscribe({ next: () => got.n++, error: () => {} });
    let flood: ReturnType<typeof spawn> | undefined;
    try {
      await waitFor(async () => (await ns.exec(['nft', 'list', 'tables'])).stdout.includes('flowgrab_dns'), {
        what: 'the DNS capture rules',
      });
      // One query sent as fast as Python can, until stopped (the timeout only bounds a test gone wrong): each is
      // logged to us. Before the drain's turn budget the loop waited 8 s for its turn: no timer ran meanwhile.
      const sender =
        'import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nq=bytes.fromhex("123401000001000000000000076578616d706c6503636f6d0000010001")\nwhile True:\n  try: s.sendto(q,("127.0.0.1",53))\n  except OSError: pass\n';
      const f = spawn('ip', ['netns', 'exec', ns.name, 'timeout', '120', 'python3', '-c', sender], {
        stdio: 'ignore',
      });
      flood = f;
      const flooding = () => f.exitCode === null && f.signalCode === null;
      // waitFor looks on timers: each time it sees more records, a timer ran in the middle of the flood.
      for (let round = 1; round <= 3; round++) {
        const want = got.n + 3000;
        await waitFor(() => got.n >= want, { timeoutMs: 60_000, what: `3000 more DNS records (round ${round})` });
        expect(flooding(), `round ${round}: the flood still running`).toBe(true);
      }
    } finally {
      flood?.kill('SIGTERM'); // timeout passes it on to python
      if (flood && flood.exitCode === null && flood.signalCode === null)
        await new Promise((r) => flood?.once('exit', r));
      sub.unsubscribe();
      await sourcesTornDown();
    }
  });

  it('drains every event while the main thread is blocked, answers a dump in its namespace, and cleans up', async () => {
    const before = socketFds().length;
    const sock = NetlinkSocket.open(
      { protocol: NETLINK_NETFILTER, netns: ns.name, batched: true, recvBufferBytes: 1 << 20, readBufferBytes: 8192 },
      openNativeTransport,
    );
    expect(socketFds().length).toBe(before + 1);
    expect(sock.recvBufferSize()).toBe(2 << 20);
    const errors: Error[] = [];
    sock.onError((e) => errors.push(e));
    let events = 0;
    sock.onEvent((m, groups) => {
      if (groups === 1 << (NFNLGRP_CONNTRACK_NEW - 1) && m.type === 0x100) events++;
    });
    sock.joinGroup(NFNLGRP_CONNTRACK_NEW);
    try {
      floodUdpSync(ns.name, { count: FLOWS, base: 3 }); // the main thread cannot read meanwhile
      await waitFor(() => events >= FLOWS, { timeoutMs: 10_000, what: `${FLOWS} NEW events` });
      expect(events).toBe(FLOWS);
      expect(sock.drops()).toBe(0);
      expect(errors).toEqual([]);

      // A dump on the same socket: the namespace's table, not ours.
      const req = ctDumpRequest({ family: 2 });
      const replies = await sock.request(req.type, NLM_F_DUMP, req.payload, { op: 'dump' });
      expect(replies.length).toBe((await kernelIds(ns.name)).length);
      expect(replies.length).toBeGreaterThanOrEqual(FLOWS);
    } finally {
      sock.close();
    }
    // close() returns once the worker has let go and the fd is closed.
    expect(socketFds().length).toBe(before);
    expect(() => sock.send(0, 0, Buffer.alloc(4))).toThrow(/closed/);
  });

  it('a drain past its turn leaves the rest for the next; deliverPending hands it all over at once, in order', async () => {
    const n = 2000;
    const sock = NetlinkSocket.open(
      { protocol: NETLINK_NETFILTER, netns: ns.name, batched: true, recvBufferBytes: 8 << 20, readBufferBytes: 8192 },
      openNativeTransport,
    );
    const dsts: string[] = [];
    let atTurn = -1;
    let afterPending = -1;
    sock.onEvent((m) => {
      if (m.type !== 0x100) return;
      dsts.push(decodeCtMessage(m).entry.orig?.dst ?? '?');
      if (dsts.length !== 1) return;
      // The first event takes longer than a drain's turn: the drain stops soon after it, and the loop's next
      // turn (this setImmediate, queued before the drain's own) finds the rest still held back.
      const until = performance.now() + 40;
      while (performance.now() < until);
      setImmediate(() => {
        atTurn = dsts.length;
        sock.deliverPending();
        afterPending = dsts.length;
      });
    });
    sock.joinGroup(NFNLGRP_CONNTRACK_NEW);
    try {
      floodUdpSync(ns.name, { count: n, base: 62 }); // blocked: the worker reads all of it into the ring meanwhile
      await waitFor(() => dsts.length >= n, { timeoutMs: 10_000, what: `${n} NEW events` });
      expect(atTurn).toBeGreaterThan(0);
      expect(atTurn).toBeLessThan(n);
      expect(afterPending).toBe(n); // all of them, synchronously
      expect(dsts.length).toBe(n);
      expect(new Set(dsts).size).toBe(n); // each once, none skipped
      expect(sock.drops()).toBe(0);
    } finally {
      sock.close();
    }
  });

  it('reads many events per syscall into a ring it may only fill a little: each once, none lost, while blocked', async () => {
    // 64 KiB of read-ahead holds a handful of 8 KiB slots: the worker reads a few per recvmmsg, waits for the
    // main thread, and the kernel's queue (8 MiB) holds the rest meanwhile.
    const n = 3000;
    const sock = NetlinkSocket.open(
      {
        protocol: NETLINK_NETFILTER,
        netns: ns.name,
        batched: true,
        recvBufferBytes: 8 << 20,
        readBufferBytes: 8192,
        readAheadBytes: 64 * 1024,
      },
      openNativeTransport,
    );
    const errors: Error[] = [];
    sock.onError((e) => errors.push(e));
    const dsts: string[] = [];
    const kept: NetlinkMessage[] = [];
    sock.onEvent((m) => {
      if (m.type !== 0x100) return;
      dsts.push(decodeCtMessage(m).entry.orig?.dst ?? '?');
      kept.push(m);
    });
    sock.joinGroup(NFNLGRP_CONNTRACK_NEW);
    try {
      floodUdpSync(ns.name, { count: n, base: 60 }); // blocks the main thread: the ring fills, then the socket
      await waitFor(() => dsts.length >= n, { timeoutMs: 10_000, what: `${n} NEW events` });
      expect(dsts.length).toBe(n);
      expect(new Set(dsts).size).toBe(n); // one flow per destination: each event once
      expect(dsts.every((d) => d.startsWith('127.60.'))).toBe(true);
      // Datagrams are delivered in place from the worker's ring; a message that outlives its call owns its bytes,
      // so read again now (the ring has moved on) each still says what it said.
      expect(kept.every((m) => !(m.payload.buffer instanceof SharedArrayBuffer))).toBe(true);
      expect(kept.map((m) => decodeCtMessage(m).entry.orig?.dst ?? '?')).toEqual(dsts);
      expect(sock.drops()).toBe(0);
      expect(errors).toEqual([]);
    } finally {
      sock.close();
    }
  });

  it('reads a dump’s full datagrams straight into ring slots, around the ring more than once: each entry once', async () => {
    const n = 60_000; // some 18 MiB of dump parts: the 8 MiB ring wraps twice
    floodUdpSync(ns.name, { count: n, base: 64 });
    const sock = NetlinkSocket.open(
      {
        protocol: NETLINK_NETFILTER,
        netns: ns.name,
        batched: true,
        fullDatagrams: true,
        lingerMs: 0,
        readAheadBytes: 1 << 20, // the worker waits for the main thread every 30 slots or so
      },
      openNativeTransport,
    );
    const errors: Error[] = [];
    sock.onError((e) => errors.push(e));
    try {
      const req = ctDumpRequest({ family: 2 });
      const replies = await sock.request(req.type, NLM_F_DUMP, req.payload, { op: 'dump' });
      const dsts = replies.map((m) => decodeCtMessage(m).entry.orig?.dst ?? '?');
      const ours = dsts.filter((d) => d.startsWith('127.64.'));
      expect(ours.length).toBe(n);
      expect(new Set(ours).size).toBe(n); // one flow per destination: each entry once
      expect(dsts.length).toBeGreaterThanOrEqual(n + FLOWS);
      expect(errors).toEqual([]);
    } finally {
      sock.close();
    }
  });

  it('reports each datagram longer than the read buffer as truncated, and goes on reading', async () => {
    const sock = NetlinkSocket.open(
      { protocol: NETLINK_NETFILTER, netns: ns.name, batched: true, readBufferBytes: 64 },
      openNativeTransport,
    );
    const errors: Error[] = [];
    sock.onError((e) => errors.push(e));
    let events = 0;
    sock.onEvent(() => events++);
    sock.joinGroup(NFNLGRP_CONNTRACK_NEW);
    try {
      floodUdpSync(ns.name, { count: 20, base: 61 });
      await waitFor(() => errors.length >= 20, { timeoutMs: 10_000, what: '20 truncation errors' });
      expect(errors.length).toBe(20);
      expect(errors[0].message).toMatch(/truncated/);
      expect(events).toBe(0);
    } finally {
      sock.close();
    }
  });

  it('close() releases an NFLOG group and an NFQUEUE queue before it returns: the next socket binds them at once', async () => {
    const before = socketFds().length;
    const binds = [
      { what: 'NFLOG group 41', type: NFLOG_CONFIG_TYPE, payload: nflogBind(41) },
      { what: 'NFQUEUE queue 41', type: NFQUEUE_CONFIG_TYPE, payload: nfqBind(41) },
    ];
    for (const { what, type, payload } of binds) {
      for (let i = 0; i < 10; i++) {
        const sock = NetlinkSocket.open(
          { protocol: NETLINK_NETFILTER, netns: ns.name, batched: true },
          openNativeTransport,
        );
        try {
          // A second reader of a bound group or queue gets EPERM: this bind fails unless the last close released it.
          await expect(sock.request(type, 0, payload, { op: `bind ${what} (#${i})` })).resolves.toEqual([]);
        } finally {
          sock.close(); // no unbind: closing the socket is what frees it
        }
      }
    }
    expect(socketFds().length).toBe(before);
  });

  it('hands a closed transport’s worker to the next one, which receives as a new one would', async () => {
    const open = () =>
      NetlinkSocket.open({ protocol: NETLINK_NETFILTER, netns: ns.name, batched: true }, openNativeTransport);
    const first = open();
    const started = receiveWorkers.started;
    first.close();
    const second = open();
    try {
      expect(receiveWorkers.started).toBe(started);
      const events = await newEventsOfFlood(
        second,
        ns.name,
        { count: 500, base: 9 },
        '500 NEW events on the reused worker',
      );
      expect(events).toBe(500);
    } finally {
      second.close();
    }
    // With none kept idle (the first takes the one kept above), each transport starts its own.
    receiveWorkers.idleMax = 0;
    try {
      open().close();
      const before = receiveWorkers.started;
      open().close();
      open().close();
      expect(receiveWorkers.started).toBe(before + 2);
    } finally {
      receiveWorkers.idleMax = 2;
    }
  });

  it('process.exit() with a socket still reading on its worker ends the process at once', async () => {
    // exit() terminates workers without closing their sockets, and waits for their threads: one blocked in
    // poll(2) would hold the process until the poll's 30 s timeout, were it not woken by the exit hook.
    const child = await runChild(
      `
      const { readdirSync, readFileSync } = await import('node:fs');
      NetlinkSocket.open({ protocol: 12, batched: true }, openNativeTransport);
      const inPoll = () => readdirSync('/proc/self/task').some((t) =>
        /^(poll_schedule_timeout|do_sys_poll)/.test(readFileSync('/proc/self/task/' + t + '/wchan', 'utf8')));
      // Until the worker is seen in poll, bounded: past the deadline the child says so and fails.
      const deadline = Date.now() + 15000;
      while (!inPoll()) {
        if (Date.now() > deadline) {
          console.log('never in poll');
          process.exit(2);
        }
        await new Promise((r) => setImmediate(r));
      }
      console.log('in poll');
      process.exit(0);
    `,
      60_000,
    );
    expect({ code: child.code, out: child.out }).toEqual({ code: 0, out: 'in poll\n' });
    // From 'in poll' to the exit: far below the poll timeout (30 s) even on a loaded machine.
    expect(child.afterOutputMs).toBeLessThan(10_000);
  });

  it('closing transports whose workers are still loading never takes the process down', async () => {
    // Each close gives its worker back before it has loaded koffi; past the two kept idle, the rest are ended.
    // Ended with terminate() in the middle of koffi's load, a worker aborted the whole process (FATAL ERROR).
    const child = await runChild(
      `
      // Eight at once (two find a kept worker, six start one), closed once a new worker has run for 0 or 1
      // clock tick of CPU (their own progress, read from /proc, not a wait): starting a worker and loading
      // koffi takes a few ticks, so some closes land in the middle of the load.
      const { readdirSync, readFileSync } = await import('node:fs');
      const tids = () => readdirSync('/proc/self/task');
      const ticks = (tid) => {
        try {
          const f = readFileSync('/proc/self/task/' + tid + '/stat', 'utf8').split(') ')[1].split(' ');
          return Number(f[11]) + Number(f[12]);
        } catch {
          return 0; // gone already
        }
      };
      // Until a fact holds, bounded: past the deadline the child says which and fails.
      const until = async (fact, what) => {
        for (const deadline = Date.now() + 10000; !fact(); await new Promise((r) => setImmediate(r)))
          if (Date.now() > deadline) { console.log(what); process.exit(2); }
      };
      const base = tids().length;
      for (let round = 0; round < 30; round++) {
        // The last round's retired workers are gone (two stay kept, idle).
        await until(() => tids().length <= base + 2, 'retired workers still there');
        const before = new Set(tids());
        const socks = Array.from({ length: 8 }, () => NetlinkSocket.open({ protocol: 12, batched: true }, openNativeTransport));
        const want = round % 2;
        await until(() => tids().some((t) => !before.has(t) && ticks(t) >= want), 'no worker ran');
        for (const s of socks) s.close();
      }
      console.log('closed');
      // The retired workers leave once loaded; the process then ends by itself.
    `,
      30_000,
    );
    expect({ code: child.code, out: child.out }).toEqual({ code: 0, out: 'closed\n' });
  });

  it('an idle worker keeps no process alive', async () => {
    // Idle workers end after 30 s: a process that waited for that would miss this bound.
    const child = await runChild(
      `NetlinkSocket.open({ protocol: 12, batched: true }, openNativeTransport).close(); console.log('closed');`,
      15_000,
    );
    expect({ code: child.code, out: child.out }).toEqual({ code: 0, out: 'closed\n' });
  });
});

/** Runs `body` in a node process of its own, with NetlinkSocket and openNativeTransport imported; its exit code and output. */
async function runChild(
  body: string,
  timeoutMs: number,
): Promise<{ code: number | null; out: string; afterOutputMs: number }> {
  const socket = join(DIST, 'src/netlink/socket.js');
  const native = join(DIST, 'src/netlink/native.js');
  const script = `
    const { NetlinkSocket } = await import(${JSON.stringify(socket)});
    const { openNativeTransport } = await import(${JSON.stringify(native)});
    ${body}
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let outputAt = 0;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    outputAt = Date.now();
  });
  try {
    await waitFor(() => child.exitCode !== null, { timeoutMs, intervalMs: 10, what: 'the child to exit' });
    return { code: child.exitCode, out, afterOutputMs: Date.now() - outputAt };
  } finally {
    child.kill('SIGKILL');
  }
}
