/**
 * Export from the home router to Debian's nfcapd (nfdump 1.7): what nfdump
 * stores equals what `conntrack -E -e DESTROY` saw end (tuples, protocol,
 * packets, bytes; IPv4 and IPv6; ICMP by type and code), over IPFIX biflow
 * and NetFlow v9; tshark decodes every datagram without malformed or
 * unknown-template warnings; SIGTERM exports pending deltas of running
 * flows; a collector that is down costs counted records and the exporter
 * recovers when it returns.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { ipfixSink, netflow9Sink } from '../../src/export/collector.js';
import { exportConntrack } from '../../src/export/exporter.js';
import type { ExportFlow } from '../../src/export/flow.js';
import type { FlowSink } from '../../src/export/sink.js';
import { createHomeNetwork, generateTraffic, type HomeNetwork, waitFor } from '../../src/testing/lab/index.js';
import { conntrackTool, type KernelCtEnd, type KernelCtEntry, kernelTable } from '../helpers/conntrack-cli.js';
import { FLOWGRAB } from '../helpers/daemon.js';
import { udpFlow } from '../helpers/records.js';
import { Capture, DestroyLog, freeUdpPort, Nfcapd, type NfdumpFlow } from './export-helpers.js';

let home: HomeNetwork;
let router: string;

beforeAll(async () => {
  home = await createHomeNetwork();
  router = home.router.name;
});
afterAll(async () => {
  await home?.close();
});

const src = (f: NfdumpFlow) => f.src4_addr ?? f.src6_addr;
const dst = (f: NfdumpFlow) => f.dst4_addr ?? f.dst6_addr;
const isIcmp = (p: number) => p === 1 || p === 58;

/** A direction of a conntrack entry, keyed the way nfdump prints it. */
function keyOf(protonum: number, e: KernelCtEnd): string {
  const ports = isIcmp(protonum) ? `icmp ${e.icmp?.type}/${e.icmp?.code}` : `${e.sport ?? 0}>${e.dport ?? 0}`;
  return `${protonum} ${e.src}>${e.dst} ${ports}`;
}
function keyOfNfdump(f: NfdumpFlow): string {
  const ports = isIcmp(f.proto) ? `icmp ${f.icmp_type}/${f.icmp_code}` : `${f.src_port ?? 0}>${f.dst_port ?? 0}`;
  return `${f.proto} ${src(f)}>${dst(f)} ${ports}`;
}

/** An entry or an exported flow by protocol and addresses (and ports, but for ICMP). */
function endKey(protonum: number, e: { src?: string; dst?: string; sport?: number; dport?: number }): string {
  return `${protonum} ${e.src}>${e.dst}${isIcmp(protonum) ? '' : ` ${e.sport ?? 0}>${e.dport ?? 0}`}`;
}

/** Counts what passes through `sink` by endKey, so a test can wait for the flows it knows must come. */
function counting(sink: FlowSink): { sink: FlowSink; written: Map<string, number> } {
  const written = new Map<string, number>();
  const wrapped: FlowSink = {
    kind: sink.kind,
    write: (r) => {
      const f = r as ExportFlow;
      const k = endKey(f.protonum, f);
      written.set(k, (written.get(k) ?? 0) + 1);
      sink.write(r);
    },
    flush: () => sink.flush(),
    close: () => sink.close(),
    stats: () => sink.stats(),
  };
  return { sink: wrapped, written };
}

/**
 * Traffic through the router, then a flush: every entry ends, and reports DESTROY with its counters.
 * Returns how many entries of each endKey the flush ended; `beforeFlush` runs just before it.
 */
async function trafficThenFlush(beforeFlush: () => void = () => {}): Promise<Map<string, number>> {
  const t = await generateTraffic(home, { rounds: 1, ipv6: true });
  expect(t.failures).toEqual([]);
  const table = await kernelTable(router);
  beforeFlush();
  await conntrackTool(router, ['-F']);
  const flushed = new Map<string, number>();
  for (const e of table) flushed.set(endKey(e.protonum, e.orig), (flushed.get(endKey(e.protonum, e.orig)) ?? 0) + 1);
  return flushed;
}

async function runExport(
  makeSink: (collector: string) => FlowSink,
): Promise<{ destroyed: KernelCtEntry[]; flows: NfdumpFlow[]; log: string; tshark: string; sink: FlowSink }> {
  const nfcapd = await Nfcapd.start();
  const cap = new Capture(nfcapd.dir, nfcapd.port);
  const ct = new DestroyLog(router);
  try {
    return await exportAndCollect(makeSink, nfcapd, cap, ct);
  } finally {
    // Stopping twice is harmless: whatever a failed test left running ends here.
    await Promise.allSettled([cap.stop(), ct.stop(), nfcapd.stop()]);
    nfcapd.remove();
  }
}

async function exportAndCollect(
  makeSink: (collector: string) => FlowSink,
  nfcapd: Nfcapd,
  cap: Capture,
  ct: DestroyLog,
): Promise<{ destroyed: KernelCtEntry[]; flows: NfdumpFlow[]; log: string; tshark: string; sink: FlowSink }> {
  {
    await Promise.all([cap.start(), ct.start()]);
    const sink = makeSink(`127.0.0.1:${nfcapd.port}`);
    let listening: Promise<void> | undefined;
    const { sink: watched, written } = counting(sink);
    const ex = exportConntrack(watched, { netns: router, activeTimeoutS: 300, ready: (p) => (listening = p) });
    if (!listening) throw new Error('the exporter gave no readiness signal');
    await listening;
    // Written since just before the flush, per key: the flush's DESTROYs come after any earlier one.
    let before = new Map<string, number>();
    const flushed = await trafficThenFlush(() => (before = new Map(written)));
    const missing = () =>
      [...flushed].filter(([k, n]) => (written.get(k) ?? 0) - (before.get(k) ?? 0) < n).map(([k]) => k);
    await waitFor(() => missing().length === 0 && ex.stats().tracker.tracking === 0, {
      timeoutMs: 30_000,
      what: 'the exporter to export every flow the flush ended',
    }).catch((err) => {
      throw new Error(`${(err as Error).message}; missing ${missing().join(', ')}`, { cause: err });
    });
    await ex.close();
    const destroyed = await ct.stop();
    await cap.stop(sink.stats().messages);
    const { flows, log } = await nfcapd.stop();
    return { destroyed, flows, log, tshark: await cap.decode(), sink };
  }
}

/** tshark: no malformed packets, no expert warnings, no data without its template. */
function expectCleanDecode(tshark: string, messages: number): void {
  expect(tshark).not.toMatch(/Malformed|\[Expert Info|not found|Unknown|Data \(\d+ bytes\), no template/i);
  expect((tshark.match(/^Cisco NetFlow\/IPFIX$/gm) ?? []).length).toBe(messages);
}

describe('flow export to nfcapd', () => {
  it('IPFIX biflow: nfdump shows each ended flow once, with both directions’ counters, NAT side and ICMP type; tshark decodes it all', async () => {
    const { destroyed, flows, log, tshark, sink } = await runExport((c) => ipfixSink({ collector: c }));
    expect(destroyed.length).toBeGreaterThan(20);
    expect(destroyed.some((e) => e.family === 'ipv6')).toBe(true);
    expect(destroyed.some((e) => e.protonum === 1) && destroyed.some((e) => e.protonum === 58)).toBe(true);
    expect(log).toMatch(/Sequence Errors: 0, Bad Packets: 0/);
    const byKey = new Map<string, NfdumpFlow[]>();
    for (const f of flows) byKey.set(keyOfNfdump(f), [...(byKey.get(keyOfNfdump(f)) ?? []), f]);
    expect(flows).toHaveLength(destroyed.length);
    for (const e of destroyed) {
      const [f] = byKey.get(keyOf(e.protonum, e.orig)) ?? [];
      expect(f, `nfdump has ${e.line}`).toBeDefined();
      expect([f.in_packets, f.in_bytes, f.out_packets ?? 0, f.out_bytes ?? 0]).toEqual([
        e.orig.packets,
        e.orig.bytes,
        e.reply.packets,
        e.reply.bytes,
      ]);
      if (e.family === 'ipv4' && (e.protonum === 6 || e.protonum === 17)) {
        // Post-NAT from the reply tuple: the reply's destination is the translated source.
        expect([f.src4_xlt_ip, f.dst4_xlt_ip, Number(f.src_xlt_port), Number(f.dst_xlt_port)]).toEqual([
          e.reply.dst,
          e.reply.src,
          e.reply.dport,
          e.reply.sport,
        ]);
      }
      expect(Date.parse(`${f.last}Z`)).toBeGreaterThanOrEqual(Date.parse(`${f.first}Z`));
    }
    const st = sink.stats();
    expect(st).toMatchObject({ sent: destroyed.length, dropped: 0, rejected: 0 });
    expectCleanDecode(tshark, st.messages);
    // tshark's decoded values agree: forward and RFC 5103 reverse counters (PEN 29305), one end reason per flow.
    const sum = (re: RegExp) => [...tshark.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
    const total = (f: (e: KernelCtEntry) => number | undefined) => destroyed.reduce((n, e) => n + (f(e) ?? 0), 0);
    expect(sum(/^\s+Packets: (\d+)$/gm)).toBe(total((e) => e.orig.packets));
    expect(sum(/^\s+Octets: (\d+)$/gm)).toBe(total((e) => e.orig.bytes));
    expect(sum(/^\s+Packets: (\d+) \(Reverse Type 2 PKTS\)$/gm)).toBe(total((e) => e.reply.packets));
    expect(sum(/^\s+Octets: (\d+) \(Reverse Type 1 BYTES\)$/gm)).toBe(total((e) => e.reply.bytes));
    expect((tshark.match(/Flow End Reason: End of Flow detected/g) ?? []).length).toBe(destroyed.length);
  });

  it('NetFlow v9: one record per direction (replies only when answered), same tuples and counters; tshark decodes it all', async () => {
    const { destroyed, flows, log, tshark, sink } = await runExport((c) => netflow9Sink({ collector: c }));
    expect(log).toMatch(/Sequence Errors: 0, Bad Packets: 0/);
    // A multiset: the replies of several ICMP echoes to the NAT address share a key (the id is not exported).
    const expected: string[] = [];
    for (const e of destroyed) {
      expected.push(`${keyOf(e.protonum, e.orig)} ${e.orig.packets}/${e.orig.bytes}`);
      if ((e.reply.packets ?? 0) > 0)
        expected.push(`${keyOf(e.protonum, e.reply)} ${e.reply.packets}/${e.reply.bytes}`);
    }
    const got = flows.map((f) => `${keyOfNfdump(f)} ${f.in_packets}/${f.in_bytes}`);
    expect(got.sort()).toEqual(expected.sort());
    expect(flows.some((f) => f.src6_addr !== undefined)).toBe(true);
    const st = sink.stats();
    expect(st).toMatchObject({ sent: flows.length, dropped: 0 });
    expectCleanDecode(tshark, st.messages);
    // tshark decodes every record, with the same counters nfdump stored.
    expect((tshark.match(/\[Duration: /g) ?? []).length).toBe(flows.length);
    const sum = (re: RegExp) => [...tshark.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
    expect(sum(/^\s+Packets: (\d+)$/gm)).toBe(flows.reduce((n, f) => n + f.in_packets, 0));
    expect(sum(/^\s+Octets: (\d+)$/gm)).toBe(flows.reduce((n, f) => n + f.in_bytes, 0));
  });

  it('flowgrab export (CLI) on SIGTERM exports the pending deltas of flows still running, as conntrack -L counts them', async () => {
    const nfcapd = await Nfcapd.start();
    try {
      await conntrackTool(router, ['-F']);
      const cli = spawn(
        process.execPath,
        [FLOWGRAB, 'export', '--netflow9', `127.0.0.1:${nfcapd.port}`, '--netns', router, '--active-timeout', '0'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let err = '';
      cli.stderr.on('data', (d) => (err += d));
      onTestFinished(() => {
        if (cli.exitCode === null && cli.signalCode === null) cli.kill('SIGKILL');
      });
      // "export started": from then on its event socket listens, and a SIGTERM exports what is pending.
      await waitFor(() => err.includes('msg="export started"'), { timeoutMs: 20_000, what: `export started\n${err}` });
      // A long UDP exchange: the flow stays in the table (no DESTROY) until SIGTERM.
      const c = home.clients[1];
      await c.ns.exec(['socat', '-T', '1', '-', `UDP4:${home.server.ipv4}:${home.server.udpPort}`], {
        input: 'one\ntwo\nthree\n',
        allowFail: true,
      });
      const table = (await kernelTable(router)).filter((e) => e.orig.dport === home.server.udpPort);
      expect(table).toHaveLength(1);
      const exited = new Promise<number | null>((r) => cli.once('exit', (code) => r(code)));
      cli.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(err).toMatch(/msg="export finished".*tracker_forced=[1-9]/);
      const { flows } = await nfcapd.stop();
      const [e] = table;
      const f = flows.find((x) => keyOfNfdump(x) === keyOf(e.protonum, e.orig));
      expect(f, err).toBeDefined();
      expect([f?.in_packets, f?.in_bytes]).toEqual([e.orig.packets, e.orig.bytes]);
    } finally {
      await nfcapd.stop();
      nfcapd.remove();
    }
  });
});

const flow = (i: number): ExportFlow => ({ ...udpFlow(i), rbytes: 100, start: Date.now() - 1000, end: Date.now() });

describe('collector down, then back', () => {
  for (const kind of ['ipfix', 'netflow9'] as const) {
    it(`${kind}: keeps going while the port is unreachable, counts what it could not send, recovers with templates`, async () => {
      const port = await freeUdpPort();
      const collector = `127.0.0.1:${port}`;
      const sink = kind === 'ipfix' ? ipfixSink({ collector }) : netflow9Sink({ collector });
      const perRecord = kind === 'ipfix' ? 1 : 2;
      // Nobody listens: ICMP port unreachable makes the next send fail with ECONNREFUSED.
      for (let i = 0; i < 20; i++) {
        sink.write(flow(i));
        await sink.flush();
      }
      const down = sink.stats();
      expect(down.dropped).toBeGreaterThan(0);
      expect(down.errors).toBeGreaterThan(0);
      expect(down.lastError).toMatch(/ECONNREFUSED/);
      expect(down.sent + down.dropped).toBe(20 * perRecord);
      const nfcapd = await Nfcapd.start(port);
      try {
        // After a refusal the exporter holds off for a while (counting, not sending): probe until a record goes out.
        let probes = 0;
        await waitFor(
          async () => {
            const before = sink.stats().sent;
            sink.write(flow(200 + probes++));
            await sink.flush();
            return sink.stats().sent > before;
          },
          { timeoutMs: 15_000, intervalMs: 50, what: 'the exporter to send again once the collector is back' },
        );
        const probe = 200 + probes - 1;
        for (let i = 100; i < 110; i++) {
          sink.write(flow(i));
          await sink.flush();
        }
        await sink.close();
        const { flows, log } = await nfcapd.stop();
        // Every record sent after the collector returned was decoded: the templates came with the first message.
        expect(flows.map((f) => f.src_port).sort(), `${JSON.stringify(sink.stats())} ${log}`).toEqual(
          [...Array.from({ length: 10 }, (_, i) => 10_100 + i), 10_000 + probe]
            .flatMap((p) => (kind === 'ipfix' ? [p] : [p, 7007]))
            .sort(),
        );
        expect(log).toMatch(/Bad Packets: 0/);
        const st = sink.stats();
        expect(st.sent - down.sent).toBe(11 * perRecord);
        expect(st.dropped).toBe(down.dropped + (probes - 1) * perRecord);
      } finally {
        await nfcapd.stop();
        nfcapd.remove();
      }
    });
  }
});
