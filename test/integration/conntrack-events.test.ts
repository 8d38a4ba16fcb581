/**
 * Conntrack events from the real kernel: every flow the home network makes
 * reports NEW, its state changes as UPDATE, and its end (a flush) as DESTROY
 * with the counters `conntrack -L` showed; one socket serves subscribers with
 * the same options; and the nf_conntrack_events sysctl is checked (and set
 * when asked) in the watched namespace.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConntrackOptionsInput } from '../../src/sources/conntrack/options.js';
import type { ConntrackRecord } from '../../src/sources/conntrack/record.js';
import { conntrack, conntrackFeedRefs } from '../../src/sources/conntrack/source.js';
import type { SourceNotice } from '../../src/sources/notice.js';
import {
  createHomeNetwork,
  generateTraffic,
  type HomeNetwork,
  Lab,
  type Netns,
  waitFor,
} from '../../src/testing/lab/index.js';
import {
  conntrackTool,
  countersOf,
  type KernelCtEntry,
  kernelIds,
  kernelTable,
  tupleKey,
} from '../helpers/conntrack-cli.js';

let home: HomeNetwork;
let router: string;
let lab: Lab;
let plain: Netns;

beforeAll(async () => {
  lab = new Lab();
  try {
    plain = await lab.netns('plain');
    home = await createHomeNetwork();
    router = home.router.name;
  } catch (err) {
    await lab.close().catch(() => {});
    throw err;
  }
});

afterAll(async () => {
  const errors: unknown[] = [];
  await home?.close().catch((e) => errors.push(e));
  await lab?.close().catch((e) => errors.push(e));
  if (errors.length > 0) throw errors[0];
});

const byId = (recs: ConntrackRecord[]) => {
  const m = new Map<number, ConntrackRecord[]>();
  for (const r of recs) m.set(r.id, [...(m.get(r.id) ?? []), r]);
  return m;
};

/** Two identical listings 300 ms apart: the traffic is over and no counter moves. */
async function quietTable(netns: string): Promise<KernelCtEntry[]> {
  const steady = (t: KernelCtEntry[]) =>
    t
      .map((k) => `${k.id} ${tupleKey(k)} ${k.state} ${k.flags.join()} ${countersOf(k)}`)
      .sort()
      .join('\n');
  let prev = await kernelTable(netns);
  let quiet: KernelCtEntry[] | undefined;
  // Quiet means unchanged over an interval: the interval is part of the fact, the wait is bounded and throws.
  await waitFor(
    async () => {
      const cur = await kernelTable(netns);
      if (steady(cur) === steady(prev)) quiet = cur;
      prev = cur;
      return quiet !== undefined;
    },
    { timeoutMs: 6_000, intervalMs: 300, what: 'the conntrack table to hold still' },
  );
  return quiet!;
}

/** Inodes of this process's sockets (all namespaces: /proc/self/fd sees them all). */
function socketInodes(): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const t = readlinkSync(`/proc/self/fd/${fd}`);
      if (t.startsWith('socket:')) out.add(t);
    } catch {
      // closed while we looked
    }
  }
  return out;
}
const added = (before: Set<string>, after: Set<string>) => [...after].filter((x) => !before.has(x));

describe('conntrack events in the home router', () => {
  it('every flow reports NEW and DESTROY (with counters and delta equal to `conntrack -L`); known TCP exchanges have the right tuples and states', async () => {
    await conntrackTool(router, ['-F']);
    const recs: ConntrackRecord[] = [];
    const notices: SourceNotice[] = [];
    const t0 = Date.now();
    const errors: unknown[] = [];
    const sub = conntrack({
      events: ['new', 'update', 'destroy'],
      netns: router,
      notices: { next: (n) => notices.push(n) },
    }).subscribe({ next: (r) => recs.push(r), error: (e) => errors.push(e) });
    let snapshot: KernelCtEntry[];
    let preexisting: Set<number>;
    const c = home.clients[0];
    const { server } = home;
    // Source ports of our own exchanges: random, high, and different per run.
    // Above the ephemeral range (32768–60999), so no earlier connection of the lab holds the port.
    const sport4 = 61_000 + 2 * Math.floor(Math.random() * 2_000);
    const sport6 = sport4 + 1;
    let traffic: Awaited<ReturnType<typeof generateTraffic>>;
    try {
      preexisting = new Set(await kernelIds(router));
      traffic = await generateTraffic(home, { rounds: 1, ipv6: true });
      const echo4 = await c.ns.exec(
        ['socat', '-T', '3', '-', `TCP4:${server.ipv4}:${server.tcpPort},sourceport=${sport4},reuseaddr`],
        { input: 'hello over v4\n' },
      );
      const echo6 = await c.ns.exec(
        ['socat', '-T', '3', '-', `TCP6:[${server.ipv6}]:${server.tcpPort},sourceport=${sport6},reuseaddr`],
        { input: 'hello over v6\n' },
      );
      expect([echo4.stdout, echo6.stdout]).toEqual(['hello over v4\n', 'hello over v6\n']);
      snapshot = await quietTable(router);
      // End every flow; retry until the table is empty and every NEW has had its DESTROY.
      await waitFor(
        async () => {
          await conntrackTool(router, ['-F']);
          const destroyed = new Set(recs.filter((r) => r.type === 'destroy').map((r) => r.id));
          const left = await kernelIds(router);
          return left.length === 0 && recs.every((r) => r.type !== 'new' || destroyed.has(r.id));
        },
        { timeoutMs: 8_000, intervalMs: 200, what: 'every flow to end with a DESTROY' },
      );
    } finally {
      sub.unsubscribe();
    }
    expect(traffic.failures).toEqual([]);
    expect(errors).toEqual([]);
    // The router has events=1 and accounting on: nothing to warn about, nothing lost.
    expect(notices).toEqual([]);
    expect(recs.every((r) => r.netns === router)).toBe(true);

    const events = byId(recs);
    // Every flow started during the test (in the table before the flush, not before the test) has NEW … DESTROY.
    const started = snapshot.filter((k) => !preexisting.has(k.id));
    expect(started.length).toBeGreaterThanOrEqual(
      traffic.sent.dns + traffic.sent.ping + traffic.sent.tcp + traffic.sent.udp + traffic.sent.http + 2,
    );
    const clientAddrs = new Set(home.clients.flatMap((cl) => [cl.ipv4, cl.ipv6]));
    let counted = 0;
    for (const k of started) {
      const evs = events.get(k.id) ?? [];
      const types = evs.map((r) => r.type);
      expect(types[0], k.line).toBe('new');
      expect(types.at(-1), k.line).toBe('destroy');
      expect(
        types.filter((t) => t === 'new' || t === 'destroy'),
        k.line,
      ).toEqual(['new', 'destroy']);
      for (const r of evs) {
        expect(r.family).toBe(k.family);
        expect(r.protonum).toBe(k.protonum);
        expect(tupleKey(r)).toBe(tupleKey(k));
      }
      // DESTROY: the counters `conntrack -L` showed once the traffic was over, and (no earlier
      // event carries counters) a delta of all of them. Timestamps are this run's wall clock.
      // (Only for the clients' flows: the kernel's own IGMP reports may still tick.)
      const d = evs.at(-1) as ConntrackRecord;
      expect(d.orig.packets).toBeGreaterThan(0);
      expect(d.delta).toBeDefined();
      expect(d.start).toBeGreaterThanOrEqual(t0 - 1_000);
      expect(d.stop).toBeGreaterThanOrEqual(d.start as number);
      expect(d.stop).toBeLessThanOrEqual(Date.now() + 1_000);
      // NEW and UPDATE events carry no counters (the kernel sends them with DESTROY only).
      for (const r of evs.slice(0, -1)) expect(r.orig.packets).toBeUndefined();
      // The last state an event reported is the state `conntrack -L` showed.
      if (k.state) expect(evs.filter((r) => r.state).at(-1)?.state, k.line).toBe(k.state);
      if (!clientAddrs.has(k.orig.src)) continue;
      counted++;
      expect({ orig: [d.orig.packets, d.orig.bytes], reply: [d.reply.packets, d.reply.bytes] }, k.line).toEqual({
        orig: [k.orig.packets, k.orig.bytes],
        reply: [k.reply.packets, k.reply.bytes],
      });
      expect(d.delta, k.line).toEqual({
        orig: { packets: k.orig.packets, bytes: k.orig.bytes },
        reply: { packets: k.reply.packets, bytes: k.reply.bytes },
      });
    }
    expect(counted).toBeGreaterThanOrEqual(traffic.sent.tcp + traffic.sent.udp + traffic.sent.http);
    // And every NEW seen at all had its DESTROY (nothing was left behind).
    const destroyed = new Set(recs.filter((r) => r.type === 'destroy').map((r) => r.id));
    for (const r of recs.filter((x) => x.type === 'new')) expect(destroyed.has(r.id)).toBe(true);

    // Each exchange of generateTraffic is one flow of the right kind.
    const news = recs.filter((r) => r.type === 'new');
    for (const cl of home.clients) {
      const extra = cl === c ? 1 : 0;
      const count = (fam: 'ipv4' | 'ipv6', proto: string, dst: string, dport?: number) =>
        news.filter(
          (r) =>
            r.family === fam &&
            r.proto === proto &&
            r.orig.src === (fam === 'ipv4' ? cl.ipv4 : cl.ipv6) &&
            r.orig.dst === dst &&
            r.orig.dport === dport,
        ).length;
      expect(count('ipv4', 'tcp', server.ipv4, server.tcpPort)).toBe(1 + extra);
      expect(count('ipv6', 'tcp', server.ipv6, server.tcpPort)).toBe(1 + extra);
      expect(count('ipv4', 'tcp', server.ipv4, server.httpPort)).toBe(1);
      expect(count('ipv6', 'tcp', server.ipv6, server.httpPort)).toBe(1);
      expect(count('ipv4', 'udp', server.ipv4, server.udpPort)).toBe(1);
      expect(count('ipv6', 'udp', server.ipv6, server.udpPort)).toBe(1);
      expect(count('ipv4', 'icmp', server.ipv4)).toBe(1);
      expect(count('ipv6', 'icmpv6', server.ipv6)).toBe(1);
      expect(count('ipv4', 'udp', home.routerLan.ipv4, 53)).toBe(3);
      expect(count('ipv6', 'udp', home.routerLan.ipv6, 53)).toBe(1);
    }

    // The known exchanges: client 1 → server tcpPort from a chosen port, NATed on IPv4, routed on IPv6.
    for (const [fam, sport, src, dst, replyDst] of [
      ['ipv4', sport4, c.ipv4, server.ipv4, home.routerWan.ipv4],
      ['ipv6', sport6, c.ipv6, server.ipv6, c.ipv6],
    ] as const) {
      const k = snapshot.find((e) => e.family === fam && e.orig.src === src && e.orig.sport === sport);
      if (!k) throw new Error(`no ${fam} entry from port ${sport} in \n${snapshot.map((e) => e.line).join('\n')}`);
      expect(k.reply.dst).toBe(replyDst);
      const evs = events.get(k.id) ?? [];
      const nw = evs[0];
      expect(nw).toMatchObject({
        type: 'new',
        family: fam,
        proto: 'tcp',
        protonum: 6,
        state: 'SYN_SENT',
        orig: { src, dst, sport, dport: server.tcpPort },
        reply: { src: dst, dst: replyDst, sport: server.tcpPort, dport: k.reply.dport },
      });
      expect(nw.status).not.toContain('SEEN_REPLY');
      if (fam === 'ipv4') expect(nw.status).toContain('SRC_NAT');
      const states = evs.filter((r) => r.type === 'update').map((r) => r.state);
      expect(states).toContain('ESTABLISHED');
      expect(states.at(-1)).toBe(k.state);
      expect(['TIME_WAIT', 'CLOSE']).toContain(k.state);
      const last = evs.filter((r) => r.type === 'update').at(-1) as ConntrackRecord;
      expect(last.status).toEqual(expect.arrayContaining(['SEEN_REPLY', 'ASSURED']));
      // A whole exchange each way: SYN … FIN, the payload echoed.
      const d = evs.at(-1) as ConntrackRecord;
      expect(d.type).toBe('destroy');
      expect(d.orig.packets).toBeGreaterThanOrEqual(4);
      expect(d.reply.packets).toBeGreaterThanOrEqual(3);
      expect(d.orig.bytes).toBeGreaterThan((d.orig.packets as number) * 40);
    }
  });

  it('two subscriptions with the same options share one socket and see the same events', async () => {
    const opts: ConntrackOptionsInput = { events: ['new', 'destroy'], netns: router };
    const a: ConntrackRecord[] = [];
    const b: ConntrackRecord[] = [];
    expect(conntrackFeedRefs(opts)).toBe(0);
    // Synchronous from here to the last count: no child process holds a socketpair meanwhile.
    const s0 = socketInodes();
    const s1 = conntrack(opts).subscribe((r) => a.push(r));
    const after1 = socketInodes();
    const s2 = conntrack({ ...opts, events: ['destroy', 'new'] }).subscribe((r) => b.push(r));
    const after2 = socketInodes();
    const refs = conntrackFeedRefs(opts);
    let other: { unsubscribe(): void } | undefined;
    try {
      expect(added(s0, after1)).toHaveLength(1);
      expect(added(after1, after2)).toEqual([]);
      expect(refs).toBe(2);
      const c = home.clients[1];
      await c.ns.exec(['ping', '-4', '-n', '-c', '1', '-W', '2', home.server.ipv4]);
      await c.ns.exec(['ping', '-6', '-n', '-c', '1', '-W', '2', home.server.ipv6]);
      await c.ns.exec(['socat', '-t', '0.3', '-T', '2', '-', `UDP4:${home.server.ipv4}:${home.server.udpPort}`], {
        input: 'shared\n',
      });
      await conntrackTool(router, ['-F']);
      await waitFor(() => a.filter((r) => r.type === 'destroy').length >= 3 && b.length === a.length, {
        timeoutMs: 5_000,
        what: 'destroys on both subscriptions',
      });
      // A different option set gets a socket of its own.
      const s3 = socketInodes();
      other = conntrack({ ...opts, family: 'ipv6' }).subscribe(() => {});
      expect(added(s3, socketInodes())).toHaveLength(1);
      expect(conntrackFeedRefs({ ...opts, family: 'ipv6' })).toBe(1);
    } finally {
      other?.unsubscribe();
      s1.unsubscribe();
    }
    const afterOne = conntrackFeedRefs(opts);
    const stillOpen = added(s0, socketInodes());
    s2.unsubscribe();
    expect(afterOne).toBe(1);
    expect(stillOpen.length).toBeGreaterThanOrEqual(1);
    expect(conntrackFeedRefs(opts)).toBe(0);
    await waitFor(() => added(s0, socketInodes()).filter((x) => after1.has(x)).length === 0, {
      timeoutMs: 2_000,
      what: 'the shared socket to close',
    });

    const key = (r: ConntrackRecord) => `${r.type} ${r.id} ${tupleKey(r)}`;
    expect(b.map(key)).toEqual(a.map(key));
    const c = home.clients[1];
    const toServer = [home.server.ipv4, home.server.ipv6];
    const mine = a.filter(
      (r) => r.type === 'new' && [c.ipv4, c.ipv6].includes(r.orig.src) && toServer.includes(r.orig.dst),
    );
    expect(mine.map((r) => r.proto).sort()).toEqual(['icmp', 'icmpv6', 'udp']);
    for (const r of mine) expect(a.some((x) => x.type === 'destroy' && x.id === r.id)).toBe(true);
  });
});

describe('the nf_conntrack_events sysctl', () => {
  const read = async () => (await plain.exec(['sysctl', '-n', 'net.netfilter.nf_conntrack_events'])).stdout.trim();

  it("warns when it is 2 (a fresh namespace's default) and leaves it alone unless setEventsSysctl", async () => {
    expect(await read()).toBe('2');
    const notices: SourceNotice[] = [];
    const sub = conntrack({
      events: ['new', 'destroy'],
      netns: plain.name,
      notices: { next: (n) => notices.push(n) },
    }).subscribe(() => {});
    sub.unsubscribe();
    const warnings = notices.filter((n) => n.kind === 'warning' && /nf_conntrack_events/.test(n.message));
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toMatch(/nf_conntrack_events=2/);
    expect(warnings[0]).toMatchObject({ source: 'conntrack', netns: plain.name });
    expect(await read()).toBe('2');
  });

  it('setEventsSysctl: true sets it to 1 in that namespace only', async () => {
    const hostBefore = readFileSync('/proc/sys/net/netfilter/nf_conntrack_events', 'utf8');
    const notices: SourceNotice[] = [];
    const sub = conntrack({
      events: ['destroy'],
      netns: plain.name,
      setEventsSysctl: true,
      notices: { next: (n) => notices.push(n) },
    }).subscribe(() => {});
    sub.unsubscribe();
    try {
      expect(await read()).toBe('1');
      expect(notices.map((n) => n.message).join('\n')).toMatch(/nf_conntrack_events was 2; set to 1/);
      expect(readFileSync('/proc/sys/net/netfilter/nf_conntrack_events', 'utf8')).toBe(hostBefore);
    } finally {
      await plain.sysctl('net.netfilter.nf_conntrack_events', 2);
    }
  });

  it('setEventsSysctl: true is honoured when a subscription with the same feed options is already open', async () => {
    expect(await read()).toBe('2');
    const first = conntrack({ events: ['new', 'destroy'], netns: plain.name }).subscribe(() => {});
    const notices: SourceNotice[] = [];
    try {
      const second = conntrack({
        events: ['new', 'destroy'],
        netns: plain.name,
        setEventsSysctl: true,
        notices: { next: (n) => notices.push(n) },
      }).subscribe(() => {});
      second.unsubscribe();
    } finally {
      first.unsubscribe();
    }
    const value = await read();
    await plain.sysctl('net.netfilter.nf_conntrack_events', 2);
    expect({ value, notices: notices.map((n) => n.message) }).toEqual({
      value: '1',
      notices: ['nf_conntrack_events was 2; set to 1'],
    });
  });
});
