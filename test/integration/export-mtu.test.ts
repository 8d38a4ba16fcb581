/**
 * The IPFIX and NetFlow v9 sinks size their UDP messages to the path MTU
 * the kernel knows towards the collector (less the IP and UDP headers, at
 * most PATH_MESSAGE_MAX), unless maxMessageBytes is given. An exporter in
 * one namespace sends to a collector in another across a veth whose MTU the
 * test sets; the collector, a UDP socket there, records the size of every
 * datagram it receives (the kernel hands it whole datagrams, reassembled or
 * not, so no size above the limit means none was fragmented).
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netflow9Sink, PATH_MESSAGE_MAX } from '../../src/export/collector.js';
import { Lab, type Netns, waitFor } from '../../src/testing/lab/index.js';
import { freeUdpPort } from './export-helpers.js';

const DIST = join(import.meta.dirname, '../../dist/src');
/**
 * The exporter scripts' wait for a fact of the sink: the lab's waitFor, looking every 5 ms; past 20 s the exporter
 * fails (exit 2) naming what it waited for.
 */
const UNTIL = `const { waitFor } = await import(${JSON.stringify(join(DIST, 'testing/lab/netns.js'))});
    const until = (fact, what) => waitFor(fact, { timeoutMs: 20000, intervalMs: 5, what }).catch(() => {
      console.log(JSON.stringify({ error: what }));
      process.exit(2);
    });`;
const COLLECTOR = { v4: '10.236.0.1', v6: 'fd00:236::1' };
/**
 * Flows per export: their datagrams (IPv6 at 1232 bytes, the most: ~130, ~300 KB of receive buffer) fit in the
 * collector's buffer at once, so it loses none however late it reads; the exporter sends without pauses.
 */
const FLOWS = 1000;

let lab: Lab;
let exp: Netns;
let col: Netns;

beforeAll(async () => {
  lab = new Lab();
  [exp, col] = await Promise.all([lab.netns('e'), lab.netns('c')]);
  await lab.veth(exp, 'fgm-e0', col, 'fgm-c0', {
    addrsA: ['10.236.0.2/24', 'fd00:236::2/64'],
    addrsB: ['10.236.0.1/24', 'fd00:236::1/64'],
  });
});

afterAll(async () => {
  await lab?.close();
});

/** `node -e script` (an ES module) inside `ns`, its stdout piped here; the lab ends it if still running. */
const node = (ns: Netns, script: string): ChildProcess =>
  ns.spawn([process.execPath, '--input-type=module', '-e', script], { pipe: true });

async function setMtu(mtu: number): Promise<void> {
  await exp.ip(['link', 'set', 'fgm-e0', 'mtu', String(mtu)]);
  await col.ip(['link', 'set', 'fgm-c0', 'mtu', String(mtu)]);
}

/** A UDP socket in the collector namespace printing each datagram's size on a line of its own. */
function collector(
  v6: boolean,
  port: number,
  at: { ns: Netns; address: string } = { ns: col, address: v6 ? COLLECTOR.v6 : COLLECTOR.v4 },
): { proc: ChildProcess; bound: () => boolean; sizes: () => number[] } {
  const script = `
    // The kernel caps the buffer at net.core.rmem_max (Debian: 208 KiB, doubled: enough for FLOWS).
    const s = (await import('node:dgram')).createSocket({ type: '${v6 ? 'udp6' : 'udp4'}', recvBufferSize: 4 << 20 });
    s.on('message', (m) => process.stdout.write(m.length + '\\n'));
    s.bind(${port}, '${at.address}', () => process.stdout.write('bound\\n'));
    process.on('SIGTERM', () => process.exit(0));
  `;
  const proc = node(at.ns, script);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return {
    proc,
    bound: () => out.startsWith('bound\n'),
    sizes: () =>
      out
        .split('\n')
        .filter((l) => /^\d+$/.test(l))
        .map(Number),
  };
}

/**
 * An exporter process in the exporter namespace: a sink to the collector, FLOWS flows once its socket is
 * connected (stats().messageBytes set), then close; prints its final stats as JSON. With `onConnected`, it
 * says its message size once connected (`size N`), `onConnected` runs, and the flows wait for the size to
 * change (`size M`).
 */
async function exportFrom(
  kind: 'netflow9' | 'ipfix',
  target: string,
  options = '',
  onConnected?: () => Promise<void>,
): Promise<Record<string, number>> {
  const script = `
    const { ipfixSink, netflow9Sink } = await import(${JSON.stringify(join(DIST, 'export/collector.js'))});
    // No timed flush (a slow turn on a busy machine would send a part-filled message): full ones, then close's.
    const sink = ${kind}Sink({ collector: ${JSON.stringify(target)}, maxDelayMs: 600000 ${options} });
    const v6 = ${target.startsWith('[')};
    ${UNTIL}
    // Flows written before the socket connects go out at the default size: wait for the path's.
    if (${!options.includes('maxMessageBytes')}) await until(() => sink.stats().messageBytes !== 1400, 'never connected');
    const first = sink.stats().messageBytes;
    console.log('size ' + first);
    if (${onConnected !== undefined}) await until(() => sink.stats().messageBytes !== first, 'size never changed');
    console.log('size ' + sink.stats().messageBytes);
    for (let i = 0; i < ${FLOWS}; i++) {
      sink.write({
        type: 'flow', family: v6 ? 'ipv6' : 'ipv4', protonum: 17, proto: 'udp',
        src: v6 ? 'fd00:236::2' : '10.236.0.2', dst: v6 ? 'fd00:9::' + (i % 60000).toString(16) : '192.0.2.' + (i % 250),
        sport: 1024 + (i % 50000), dport: 53, packets: 1, bytes: 80,
        rsrc: v6 ? 'fd00:9::1' : '192.0.2.1', rdst: v6 ? 'fd00:236::2' : '10.236.0.2', rsport: 53, rdport: 1024 + (i % 50000),
        rpackets: 1, rbytes: 120, start: Date.now() - 1000, end: Date.now(), tcpFlags: 0, reason: 'end',
      });
    }
    await sink.close();
    console.log(JSON.stringify(sink.stats()));
  `;
  const p = node(exp, script);
  let out = '';
  p.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  if (onConnected) {
    await waitFor(() => out.includes('size ') || p.exitCode !== null, {
      timeoutMs: 30_000,
      what: 'the exporter to connect',
    });
    await onConnected();
  }
  await waitFor(() => p.exitCode !== null, { timeoutMs: 45_000, what: 'the exporter to finish' });
  expect(p.exitCode, out).toBe(0);
  const lines = out.trim().split('\n');
  return {
    ...JSON.parse(lines.pop() ?? '{}'),
    sizes: lines.filter((l) => l.startsWith('size ')).map((l) => Number(l.slice(5))),
  };
}

async function run(
  kind: 'netflow9' | 'ipfix',
  v6: boolean,
  options = '',
  onConnected?: () => Promise<void>,
): Promise<{ stats: Record<string, number> & { sizes: number[] }; sizes: number[] }> {
  const port = await freeUdpPort();
  const c = collector(v6, port);
  try {
    await waitFor(() => c.bound(), {
      timeoutMs: 15_000,
      what: 'the collector socket',
    });
    const target = v6 ? `[${COLLECTOR.v6}]:${port}` : `${COLLECTOR.v4}:${port}`;
    const stats = (await exportFrom(kind, target, options, onConnected)) as Record<string, number> & {
      sizes: number[];
    };
    // Every datagram sent arrives (a veth loses nothing at this rate): wait for the last.
    await waitFor(() => c.sizes().length >= stats.messages, { timeoutMs: 15_000, what: 'every datagram' });
    return { stats, sizes: c.sizes() };
  } finally {
    c.proc.kill('SIGTERM');
  }
}

describe('UDP export messages fill the path MTU', () => {
  it('a 1280-byte link: IPv4 datagrams of at most 1252 bytes, IPv6 of at most 1232, all flows sent', async () => {
    await setMtu(1280);
    for (const v6 of [false, true]) {
      const { stats, sizes } = await run('netflow9', v6);
      const limit = 1280 - (v6 ? 48 : 28);
      expect(stats.messageBytes).toBe(limit);
      expect(stats).toMatchObject({ sent: 2 * FLOWS, dropped: 0, rejected: 0 });
      expect(sizes.length).toBe(stats.messages);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(limit);
      // Full messages: all but the last come within one record of the limit.
      expect(sizes.slice(0, -1).every((n) => n > limit - 100)).toBe(true);
    }
  });

  it('a jumbo link: messages up to PATH_MESSAGE_MAX, not the link MTU; --mtu (maxMessageBytes) still wins', async () => {
    await setMtu(16000);
    const jumbo = await run('ipfix', false);
    expect(jumbo.stats.messageBytes).toBe(PATH_MESSAGE_MAX);
    expect(Math.max(...jumbo.sizes)).toBeGreaterThan(PATH_MESSAGE_MAX - 200);
    expect(Math.max(...jumbo.sizes)).toBeLessThanOrEqual(PATH_MESSAGE_MAX);
    expect(jumbo.stats).toMatchObject({ sent: FLOWS, dropped: 0 });
    const fixed = await run('ipfix', false, ', maxMessageBytes: 700');
    expect(fixed.stats.messageBytes).toBe(700);
    expect(Math.max(...fixed.sizes)).toBeLessThanOrEqual(700);
    expect(fixed.stats).toMatchObject({ sent: FLOWS, dropped: 0 });
  });

  it('follows a change of the path MTU: 1472-byte messages on a 1500-byte link, 1252 once it is 1280', async () => {
    await setMtu(1500);
    const { stats, sizes } = await run('netflow9', false, ', pathMtuRecheckMs: 100', () => setMtu(1280));
    expect(stats.sizes).toEqual([1472, 1252]);
    expect(stats).toMatchObject({ messageBytes: 1252, sent: 2 * FLOWS, dropped: 0 });
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1252);
    expect(Math.max(...sizes)).toBeGreaterThan(1152);
  });

  it('loopback, in this process: the sink reports the size it chose once connected', async () => {
    const port = await freeUdpPort();
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => netflow9Sink({ collector: `127.0.0.1:${port}`, pathMtuRecheckMs: bad })).toThrow(/pathMtuRecheckMs/);
    const sink = netflow9Sink({ collector: `127.0.0.1:${port}` });
    try {
      expect(sink.stats().messageBytes).toBe(1400);
      await waitFor(() => sink.stats().messageBytes === PATH_MESSAGE_MAX, {
        timeoutMs: 10_000,
        what: 'the path MTU to size the messages',
      });
    } finally {
      await sink.close();
    }
  });
});

describe('a hop with a smaller MTU than the first link (path MTU discovery)', () => {
  // exporter --9000-- router --1500-- collector: the kernel's first idea of the path is 9000 bytes.
  const R = { e: '10.237.0.1', c: '10.238.0.1' };
  const C = '10.238.0.2';
  let lab2: Lab;
  let e: Netns;
  let c: Netns;

  beforeAll(async () => {
    lab2 = new Lab();
    let r: Netns;
    [e, r, c] = await Promise.all([lab2.netns('pe'), lab2.netns('pr'), lab2.netns('pc')]);
    await lab2.veth(e, 'fgp-e0', r, 'fgp-r0', { addrsA: ['10.237.0.2/24'], addrsB: [`${R.e}/24`] });
    await lab2.veth(r, 'fgp-r1', c, 'fgp-c0', { addrsA: [`${R.c}/24`], addrsB: [`${C}/24`] });
    await e.ip(['link', 'set', 'fgp-e0', 'mtu', '9000']);
    await r.ip(['link', 'set', 'fgp-r0', 'mtu', '9000']);
    await e.ip(['route', 'add', '10.238.0.0/24', 'via', R.e]);
    await c.ip(['route', 'add', '10.237.0.0/24', 'via', R.c]);
    await r.sysctl('net.ipv4.ip_forward', 1);
  });

  afterAll(async () => {
    await lab2?.close();
  });

  it('the hop\'s "fragmentation needed" makes the sink read the path MTU at once (no recheck timer) and count the lost datagram', async () => {
    const port = await freeUdpPort();
    const cl = collector(false, port, { ns: c, address: C });
    try {
      await waitFor(() => cl.bound(), { timeoutMs: 15_000, what: 'the collector socket' });
      // The exporter: no periodic recheck (pathMtuRecheckMs 0), so only the kernel's error can change the size.
      const script = `
        const { netflow9Sink } = await import(${JSON.stringify(join(DIST, 'export/collector.js'))});
        const sink = netflow9Sink({ collector: '${C}:${port}', maxDelayMs: 600000, pathMtuRecheckMs: 0 });
        ${UNTIL}
        await until(() => sink.stats().messageBytes !== 1400, 'never connected');
        console.log('size ' + sink.stats().messageBytes);
        const flow = (i) => ({ type: 'flow', family: 'ipv4', protonum: 17, proto: 'udp', src: '10.237.0.2',
          dst: '192.0.2.' + (i % 250), sport: 1024 + i, dport: 53, packets: 1, bytes: 80, rsrc: '192.0.2.1',
          rdst: '10.237.0.2', rsport: 53, rdport: 1024 + i, rpackets: 0, rbytes: 0, start: Date.now() - 1000,
          end: Date.now(), tcpFlags: 0, reason: 'end' });
        // Flows a few at a time until the size follows the path (each batch fills a message or two).
        let n = 0;
        await until(() => {
          for (let k = 0; k < 200; k++) sink.write(flow(n++));
          return sink.stats().messageBytes !== ${PATH_MESSAGE_MAX} || n > 200000;
        }, 'the size to follow the path');
        console.log('size ' + sink.stats().messageBytes);
        for (let k = 0; k < 2000; k++) sink.write(flow(n++));
        await sink.close();
        console.log(JSON.stringify({ ...sink.stats(), written: n }));
      `;
      const p = e.spawn([process.execPath, '--input-type=module', '-e', script], { pipe: true });
      let out = '';
      p.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      await waitFor(() => p.exitCode !== null, { timeoutMs: 45_000, what: 'the exporter to finish' });
      expect(p.exitCode, out).toBe(0);
      const lines = out.trim().split('\n');
      const stats = JSON.parse(lines.pop() ?? '{}');
      expect(lines).toEqual([`size ${PATH_MESSAGE_MAX}`, 'size 1472']);
      // The datagram the hop could not forward is counted as dropped, not sent.
      expect(stats.dropped).toBeGreaterThan(0);
      expect(stats.sent + stats.dropped).toBe(stats.written);
      // The 2 000 flows written after the change went out in datagrams that fit the 1500-byte hop (one that was
      // being filled when the error came may have been fragmented on the way: it arrived, reassembled).
      await waitFor(() => cl.sizes().length >= 10, { what: 'the last datagrams' });
      expect(Math.max(...cl.sizes().slice(-10))).toBeLessThanOrEqual(1472);
    } finally {
      cl.proc.kill('SIGTERM');
    }
  });
});
