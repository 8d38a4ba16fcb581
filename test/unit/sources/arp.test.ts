import { firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { encodeMessage, type NetlinkMessage } from '../../../src/netlink/nlmsg.js';
import * as R from '../../../src/netlink/rtnl/enums.js';
import { encodeLink, type LinkEntry } from '../../../src/netlink/rtnl/link.js';
import { encodeNeigh, type NeighEntry } from '../../../src/netlink/rtnl/neigh.js';
import { NeighRecord } from '../../../src/sources/arp/record.js';
import { arp, arpFeedRefs } from '../../../src/sources/arp/source.js';
import type { SourceNotice } from '../../../src/sources/notice.js';
import { ackReply, dumpReply, FakeKernel } from '../../../src/testing/fake-netlink.js';
import { collect } from '../../helpers/collect.js';
import { fixtureMessages, loadFixture } from '../../helpers/fixtures.js';

// A router: bridge br0 (2) with ports lan1 (3) and lan2 (4), and wan0 (5).
const link = (index: number, name: string, master?: number): LinkEntry => ({
  family: 0,
  type: 1,
  index,
  flags: R.IFF_UP,
  change: 0,
  name,
  ...(master === undefined ? {} : { master }),
});
const MAC1 = '02:00:00:00:77:11';
const MAC2 = '02:00:00:00:77:12';
const neigh = (dst: string, lladdr: string | undefined, state = R.NUD_REACHABLE, extra: Partial<NeighEntry> = {}) =>
  ({
    family: dst.includes(':') ? 10 : 2,
    ifindex: 2,
    state,
    flags: 0,
    type: R.RTN_UNICAST,
    dst,
    ...(lladdr ? { lladdr } : {}),
    ...extra,
  }) as NeighEntry;
const learned = (mac: string, port: number): NeighEntry => ({
  family: 7,
  ifindex: port,
  state: R.NUD_REACHABLE,
  flags: 0,
  type: 0,
  lladdr: mac,
  master: 2,
});

interface Tables {
  links: LinkEntry[];
  fdb: NeighEntry[];
  neigh: NeighEntry[];
}

/** A fake kernel answering link, FDB and neighbour dumps from `t` (which tests mutate), and what it was asked. */
function kernelWith(t: Tables) {
  const k = new FakeKernel();
  const asked: string[] = [];
  k.handler = (req: NetlinkMessage) => {
    if (req.type === R.RTM_GETLINK) {
      asked.push('link');
      return [dumpReply(req, R.RTM_NEWLINK, t.links.map(encodeLink))];
    }
    const fam = req.payload[0];
    asked.push(`neigh:${fam}`);
    const rows = fam === 7 ? t.fdb : t.neigh.filter((n) => fam === 0 || n.family === fam);
    return [dumpReply(req, R.RTM_NEWNEIGH, rows.map(encodeNeigh))];
  };
  const event = (e: NeighEntry, type = R.RTM_NEWNEIGH) =>
    k.multicast(R.RTNLGRP_NEIGH, encodeMessage({ type, flags: 0, seq: 0, pid: 0 }, encodeNeigh(e)));
  const linkEvent = (l: LinkEntry, type = R.RTM_NEWLINK) =>
    k.multicast(R.RTNLGRP_LINK, encodeMessage({ type, flags: 0, seq: 0, pid: 0 }, encodeLink(l)));
  return { k, asked, event, linkEvent };
}

const router = (): Tables => ({
  links: [link(1, 'lo'), link(2, 'br0'), link(3, 'lan1', 2), link(4, 'lan2', 2), link(5, 'wan0')],
  fdb: [
    learned(MAC1, 3),
    learned(MAC2, 4),
    // The bridge's own address and a SELF multicast entry: not devices behind a port.
    { family: 7, ifindex: 2, state: R.NUD_PERMANENT, flags: 0, type: 0, lladdr: '02:00:00:00:77:01', master: 2 },
    { family: 7, ifindex: 3, state: R.NUD_PERMANENT, flags: R.NTF_SELF, type: 0, lladdr: '33:33:00:00:00:01' },
  ],
  neigh: [
    neigh('192.168.77.11', MAC1),
    neigh('fd77::12', MAC2, R.NUD_STALE, { flags: R.NTF_ROUTER }),
    neigh('198.51.100.10', '02:00:00:00:99:10', R.NUD_DELAY, { ifindex: 5 }),
    neigh('224.0.0.22', '01:00:5e:00:00:16', R.NUD_NOARP, { type: R.RTN_MULTICAST }),
    neigh('ff02::2', '33:33:00:00:00:02', R.NUD_NOARP, { type: R.RTN_MULTICAST }),
    neigh('192.168.77.99', undefined, R.NUD_FAILED),
    neigh('192.168.77.98', undefined, R.NUD_INCOMPLETE),
  ],
});

/** The feed joined the neighbour group and its priming dumps are answered: events from now on are followed. */
async function listening(k: FakeKernel): Promise<void> {
  await k.until(() => k.openSockets.some((s) => s.groups.has(R.RTNLGRP_NEIGH)), { what: 'the neighbour event socket' });
  await k.settle();
}
const brief = (r: NeighRecord) =>
  `${r.type}:${r.ip}@${r.ifname}${r.port ? `/${r.port}` : ''}=${r.mac ?? '-'}:${r.state.join('|')}${r.resync ? ':resync' : ''}`;

describe('arp source (fake kernel)', () => {
  it('dumps usable neighbours with interface names, states and the bridge port, then completes', async () => {
    const { k, asked } = kernelWith(router());
    const recs = await lastValueFrom(arp({ transport: k.transport }).pipe(toArray()));
    expect(recs.map(brief)).toEqual([
      `dump:192.168.77.11@br0/lan1=${MAC1}:REACHABLE`,
      `dump:fd77::12@br0/lan2=${MAC2}:STALE`,
      'dump:198.51.100.10@wan0=02:00:00:00:99:10:DELAY',
    ]);
    for (const r of recs) expect(NeighRecord.parse(r)).toEqual(r);
    expect(recs[1]).toMatchObject({ family: 'ipv6', router: true, usable: true, ifindex: 2 });
    expect(recs[0].router).toBe(false);
    // Links, then the FDB (AF_BRIDGE: an AF_UNSPEC dump leaves it out), then AF_UNSPEC neighbours.
    expect(asked).toEqual(['link', 'neigh:7', 'neigh:0']);
    expect(k.openSockets).toHaveLength(0);
  });

  it('with includeUnusable reports multicast, NOARP, FAILED and INCOMPLETE entries as not usable', async () => {
    const { k } = kernelWith(router());
    const recs = await lastValueFrom(arp({ includeUnusable: true, transport: k.transport }).pipe(toArray()));
    const unusable = recs.filter((r) => !r.usable).map(brief);
    expect(unusable).toEqual([
      'dump:224.0.0.22@br0=01:00:5e:00:00:16:NOARP',
      'dump:ff02::2@br0=33:33:00:00:00:02:NOARP',
      'dump:192.168.77.99@br0=-:FAILED',
      'dump:192.168.77.98@br0=-:INCOMPLETE',
    ]);
    expect(recs.filter((r) => r.usable)).toHaveLength(3);
  });

  it('asks the kernel for one family only and drops the others', async () => {
    const { k, asked } = kernelWith(router());
    const recs = await lastValueFrom(arp({ family: 'ipv6', transport: k.transport }).pipe(toArray()));
    expect(recs.map((r) => r.ip)).toEqual(['fd77::12']);
    expect(asked).toContain('neigh:10');
    expect(asked).not.toContain('neigh:0');
  });

  it('rejects bad options with every issue at once', () => {
    const err = (() => {
      try {
        arp({ family: 'ipx' as 'ipv4', events: 'yes' as unknown as boolean, netns: '../x', bogus: 1 } as never);
      } catch (e) {
        return e as Error & { code: string };
      }
    })();
    expect(err?.code).toBe('FG_ERR_INVALID_ARGUMENT');
    expect(err?.message).toMatch(/^arp options: /);
    expect(err?.message).toMatch(/family: expected one of ipv4, ipv6, all, got "ipx"/);
    expect(err?.message).toMatch(/events: expected true or false/);
    expect(err?.message).toMatch(/netns: expected a network namespace name/);
    expect(err?.message).toMatch(/bogus: unknown option/);
    expect(() => arp({ lossCheckMs: 1 })).toThrow(/lossCheckMs: expected an integer from 10/);
  });

  it('follows events: new, update on state/MAC change, nothing for no change, delete on DEL', async () => {
    const t = router();
    const { k, event } = kernelWith(t);
    const seen: string[] = [];
    const sub = arp({ dump: false, events: true, transport: k.transport }).subscribe((r) => seen.push(brief(r)));
    await listening(k);
    // The feed learned the table silently: known entries come as updates, unknown ones as new.
    event(neigh('192.168.77.12', MAC2, R.NUD_STALE));
    event(neigh('192.168.77.11', MAC1, R.NUD_STALE));
    event(neigh('192.168.77.11', MAC1, R.NUD_STALE)); // no change: nothing
    event(neigh('192.168.77.11', '02:00:00:00:77:99', R.NUD_REACHABLE)); // MAC changed
    event(neigh('192.168.77.12', undefined, R.NUD_FAILED), R.RTM_DELNEIGH);
    await k.settle();
    expect(seen).toEqual([
      `new:192.168.77.12@br0/lan2=${MAC2}:STALE`,
      `update:192.168.77.11@br0/lan1=${MAC1}:STALE`,
      // The new MAC is behind no known port; the old port does not stick to another MAC.
      'update:192.168.77.11@br0=02:00:00:00:77:99:REACHABLE',
      `delete:192.168.77.12@br0/lan2=${MAC2}:FAILED`,
    ]);
    sub.unsubscribe();
    expect(k.openSockets).toHaveLength(0);
  });

  it('signals readiness once the table is learnt: the first event after it is told apart as update or new', async () => {
    const t = router();
    const { k, event } = kernelWith(t);
    const seen: string[] = [];
    let ready: Promise<void> | undefined;
    const sub = arp({ dump: false, events: true, transport: k.transport, ready: (p) => (ready = p) }).subscribe((r) =>
      seen.push(brief(r)),
    );
    await ready;
    event(neigh('192.168.77.11', MAC1, R.NUD_STALE));
    event(neigh('192.168.77.12', MAC2, R.NUD_STALE));
    await k.until(() => seen.length === 2, { what: 'two records' });
    expect(seen).toEqual([`update:192.168.77.11@br0/lan1=${MAC1}:STALE`, `new:192.168.77.12@br0/lan2=${MAC2}:STALE`]);
    sub.unsubscribe();
  });

  it('turns FAILED of a reported neighbour into a delete (ip neigh del: NEW FAILED, then DEL), ignores other FAILED', async () => {
    const { k, event } = kernelWith(router());
    const seen: NeighRecord[] = [];
    const sub = arp({ dump: false, events: true, transport: k.transport }).subscribe((r) => seen.push(r));
    await listening(k);
    event(neigh('192.168.77.11', undefined, R.NUD_FAILED));
    event(neigh('192.168.77.11', undefined, R.NUD_FAILED), R.RTM_DELNEIGH);
    event(neigh('192.168.77.50', undefined, R.NUD_FAILED)); // never usable: not a device
    event(neigh('ff02::1:ff00:1', '33:33:ff:00:00:01', R.NUD_NOARP, { type: R.RTN_MULTICAST }));
    await k.settle();
    expect(seen.map(brief)).toEqual([`delete:192.168.77.11@br0/lan1=${MAC1}:FAILED`]);
    // The delete keeps what identified the device.
    expect(seen[0]).toMatchObject({ mac: MAC1, port: 'lan1', usable: false });
    sub.unsubscribe();
  });

  it('with includeUnusable a FAILED neighbour is an update with usable false, and DEL deletes it', async () => {
    const { k, event } = kernelWith(router());
    const seen: string[] = [];
    const sub = arp({ dump: false, events: true, includeUnusable: true, transport: k.transport }).subscribe((r) =>
      seen.push(`${brief(r)}:${r.usable}`),
    );
    await listening(k);
    event(neigh('192.168.77.11', undefined, R.NUD_FAILED));
    event(neigh('192.168.77.11', undefined, R.NUD_FAILED), R.RTM_DELNEIGH);
    event(neigh('192.168.77.50', undefined, R.NUD_FAILED));
    await k.settle();
    expect(seen).toEqual([
      'update:192.168.77.11@br0=-:FAILED:false',
      'delete:192.168.77.11@br0=-:FAILED:false',
      'new:192.168.77.50@br0=-:FAILED:false',
    ]);
    sub.unsubscribe();
  });

  it('takes the port from FDB events: a device moving to another port is an update', async () => {
    const { k, event } = kernelWith(router());
    const seen: string[] = [];
    const sub = arp({ dump: false, events: true, transport: k.transport }).subscribe((r) => seen.push(brief(r)));
    await listening(k);
    event(learned(MAC1, 4)); // the laptop is now plugged into lan2
    const MAC3 = '02:00:00:00:77:13';
    event(learned(MAC3, 3)); // a newcomer: the bridge learns it first, ARP follows
    event(neigh('192.168.77.13', MAC3, R.NUD_STALE));
    event({ ...learned(MAC3, 3), state: R.NUD_STALE }, R.RTM_DELNEIGH); // FDB entry ages out
    event(neigh('192.168.77.13', MAC3, R.NUD_REACHABLE)); // the port it had stays
    await k.settle();
    expect(seen).toEqual([
      `update:192.168.77.11@br0/lan2=${MAC1}:REACHABLE`,
      `new:192.168.77.13@br0/lan1=${MAC3}:STALE`,
      `update:192.168.77.13@br0/lan1=${MAC3}:REACHABLE`,
    ]);
    sub.unsubscribe();
  });

  it('a port move reaches the addresses that have that MAC now, not one that had it, nor one gone', async () => {
    const { k, event } = kernelWith(router());
    const seen: string[] = [];
    const sub = arp({ dump: false, events: true, transport: k.transport }).subscribe((r) => seen.push(brief(r)));
    await listening(k);
    const MAC4 = '02:00:00:00:77:14';
    event(learned(MAC4, 3));
    event(neigh('192.168.77.14', MAC4, R.NUD_REACHABLE));
    event(neigh('192.168.77.15', MAC4, R.NUD_REACHABLE)); // two addresses, one MAC (IPv4 aliases)
    event(neigh('192.168.77.14', MAC1, R.NUD_REACHABLE)); // .14's MAC changes (to one on lan1)
    event(neigh('192.168.77.15', MAC4, R.NUD_FAILED)); // .15 goes away
    event(learned(MAC4, 4)); // the old MAC moves to lan2: neither address has it any more
    event(learned(MAC1, 4)); // .14's new MAC moves to lan2, with the fixture's .11
    await k.settle();
    expect(seen).toEqual([
      `new:192.168.77.14@br0/lan1=${MAC4}:REACHABLE`,
      `new:192.168.77.15@br0/lan1=${MAC4}:REACHABLE`,
      `update:192.168.77.14@br0/lan1=${MAC1}:REACHABLE`,
      `delete:192.168.77.15@br0/lan1=${MAC4}:FAILED`,
      `update:192.168.77.11@br0/lan2=${MAC1}:REACHABLE`,
      `update:192.168.77.14@br0/lan2=${MAC1}:REACHABLE`,
    ]);
    sub.unsubscribe();
  });

  it('names interfaces from link events, and re-reads the links for an index it does not know', async () => {
    const t = router();
    const { k, asked, event, linkEvent } = kernelWith(t);
    const seen: string[] = [];
    const sub = arp({ dump: false, events: true, transport: k.transport }).subscribe((r) => seen.push(brief(r)));
    await listening(k);
    t.links.push(link(7, 'lan3', 2));
    linkEvent(link(7, 'lan3', 2));
    event(neigh('10.0.7.1', '02:00:00:00:07:01', R.NUD_REACHABLE, { ifindex: 7 }));
    await k.settle();
    expect(seen).toEqual(['new:10.0.7.1@lan3=02:00:00:00:07:01:REACHABLE']);
    expect(asked.filter((a) => a === 'link')).toHaveLength(1); // the priming dump only
    // No link event for ifindex 8: one link dump, and events behind it keep their order.
    t.links.push(link(8, 'eth8'));
    event(neigh('10.0.8.1', '02:00:00:00:08:01', R.NUD_REACHABLE, { ifindex: 8 }));
    event(neigh('10.0.7.1', '02:00:00:00:07:01', R.NUD_STALE, { ifindex: 7 }));
    await k.settle();
    expect(seen.slice(1)).toEqual([
      'new:10.0.8.1@eth8=02:00:00:00:08:01:REACHABLE',
      'update:10.0.7.1@lan3=02:00:00:00:07:01:STALE',
    ]);
    expect(asked.filter((a) => a === 'link')).toHaveLength(2);
    // A port leaving the bridge (AF_BRIDGE DELLINK) does not remove its name; a real DELLINK does.
    linkEvent({ ...link(7, 'lan3', 2), family: 7 }, R.RTM_DELLINK);
    event(neigh('10.0.7.1', '02:00:00:00:07:01', R.NUD_REACHABLE, { ifindex: 7 }));
    await k.settle();
    expect(seen.at(-1)).toBe('update:10.0.7.1@lan3=02:00:00:00:07:01:REACHABLE');
    expect(asked.filter((a) => a === 'link')).toHaveLength(2);
    sub.unsubscribe();
  });

  it('reports kernel loss with its count and resyncs: new, changed and vanished entries, flagged resync', async () => {
    const t = router();
    const { k, event } = kernelWith(t);
    const { recs, notices, unsubscribe } = collect(
      (hooks) => arp({ dump: false, events: true, lossCheckMs: 10, transport: k.transport, ...hooks }),
      brief,
    );
    await listening(k);
    // While the socket overflowed: the laptop left, the phone's IPv6 turned REACHABLE, the TV arrived.
    t.neigh.splice(0, 2, neigh('fd77::12', MAC2, R.NUD_REACHABLE, { flags: R.NTF_ROUTER }));
    t.neigh.push(neigh('192.168.77.13', '02:00:00:00:77:13'));
    const eventSocket = k.openSockets.find((s) => s.groups.has(R.RTNLGRP_NEIGH))!;
    eventSocket.overflow(3);
    await k.until(() => recs.length >= 3 && notices.some((n) => n.kind === 'resync'), { what: 'the resync' });
    await k.settle();
    expect(notices.filter((n) => n.kind === 'loss')).toEqual([
      expect.objectContaining({ source: 'arp', count: 3, where: 'kernel' }),
    ]);
    expect(notices).toContainEqual(expect.objectContaining({ kind: 'resync', count: 3 }));
    expect(recs).toEqual([
      `update:fd77::12@br0/lan2=${MAC2}:REACHABLE:resync`,
      'new:192.168.77.13@br0=02:00:00:00:77:13:REACHABLE:resync',
      `delete:192.168.77.11@br0/lan1=${MAC1}:REACHABLE:resync`,
    ]);
    // Events after the resync compare against the re-dumped table.
    event(neigh('192.168.77.13', '02:00:00:00:77:13', R.NUD_STALE));
    await k.settle();
    expect(recs.at(-1)).toBe('update:192.168.77.13@br0=02:00:00:00:77:13:STALE');
    unsubscribe();
  });

  it('holds events that arrive during a dump until the dump is out', async () => {
    const { k, event } = kernelWith(router());
    const seen: string[] = [];
    const sub = arp({ events: true, transport: k.transport }).subscribe((r) => seen.push(brief(r)));
    event(neigh('192.168.77.11', undefined, R.NUD_FAILED)); // races the dump
    await k.until(() => seen.length >= 4, { what: 'the dump and the held event' });
    await k.settle();
    expect(seen.map((s) => s.split(':')[0])).toEqual(['dump', 'dump', 'dump', 'delete']);
    expect(seen.at(-1)).toBe(`delete:192.168.77.11@br0/lan1=${MAC1}:FAILED`);
    sub.unsubscribe();
  });

  it('shares one event socket per config; a second subscriber’s dump does not repeat itself as events', async () => {
    const t = router();
    const { k, event } = kernelWith(t);
    const a: string[] = [];
    const b: string[] = [];
    const opts = { events: true, transport: k.transport };
    const s1 = arp({ ...opts, dump: false }).subscribe((r) => a.push(brief(r)));
    await listening(k);
    // A change the kernel does not notify (STALE → DELAY): the next dump shows it.
    t.neigh[1] = neigh('fd77::12', MAC2, R.NUD_DELAY, { flags: R.NTF_ROUTER });
    const s2 = arp(opts).subscribe((r) => b.push(brief(r)));
    expect(arpFeedRefs(opts)).toBe(2);
    expect(k.openSockets.filter((s) => s.groups.size > 0)).toHaveLength(1);
    await k.until(() => a.length >= 1 && b.length >= 3, { what: 'the second dump and the first subscriber’s resync' });
    await k.settle();
    expect(a).toEqual([`update:fd77::12@br0/lan2=${MAC2}:DELAY:resync`]);
    expect(b.map((x) => x.split(':')[0])).toEqual(['dump', 'dump', 'dump']);
    event(neigh('192.168.77.14', '02:00:00:00:77:14'));
    await k.settle();
    expect(a.at(-1)).toBe('new:192.168.77.14@br0=02:00:00:00:77:14:REACHABLE');
    expect(b.at(-1)).toBe(a.at(-1));
    s1.unsubscribe();
    expect(k.openSockets.filter((s) => s.groups.size > 0)).toHaveLength(1);
    s2.unsubscribe();
    expect(k.openSockets).toHaveLength(0);
    expect(arpFeedRefs(opts)).toBe(0);
  });

  it('counts an undecodable event as loss and keeps delivering', async () => {
    const { k, event } = kernelWith(router());
    const notices: SourceNotice[] = [];
    const got = firstValueFrom(
      arp({ dump: false, events: true, transport: k.transport, notices: { next: (n) => notices.push(n) } }),
    );
    await listening(k);
    const bad = encodeMessage({ type: R.RTM_NEWNEIGH, flags: 0, seq: 0, pid: 0 }, encodeNeigh(neigh('10.0.0.1', MAC1)));
    bad.writeUInt16LE(0xff, 16 + 12); // NDA_DST's length now overruns the message
    k.multicast(R.RTNLGRP_NEIGH, bad);
    event(neigh('10.0.0.2', MAC1));
    expect((await got).ip).toBe('10.0.0.2');
    expect(notices).toEqual([expect.objectContaining({ kind: 'loss', where: 'decode', count: 1 })]);
  });

  it('fails the subscriber when the dump fails, and closes everything', async () => {
    const k = new FakeKernel();
    k.handler = (req) => [ackReply(req, 1)]; // EPERM
    const err = await lastValueFrom(arp({ transport: k.transport }).pipe(take(1))).catch((e) => e);
    expect(err).toMatchObject({ code: 'FG_ERR_PERMISSION', errnoName: 'EPERM' });
    expect(k.openSockets).toHaveLength(0);
  });

  it('on the captured kernel bytes: dump, ports, then the recorded events (ip neigh del → delete)', async () => {
    const k = new FakeKernel();
    const payloads = (name: string, type: number) =>
      fixtureMessages(name)
        .filter((m) => m.type === type)
        .map((m) => m.payload);
    k.handler = (req) => {
      if (req.type === R.RTM_GETLINK) return [dumpReply(req, R.RTM_NEWLINK, payloads('neigh-links', R.RTM_NEWLINK))];
      const name = req.payload[0] === 7 ? 'neigh-fdb' : 'neigh-dump';
      return [dumpReply(req, R.RTM_NEWNEIGH, payloads(name, R.RTM_NEWNEIGH))];
    };
    const seen: NeighRecord[] = [];
    const sub = arp({ events: true, transport: k.transport }).subscribe((r) => seen.push(r));
    await k.until(() => seen.length >= 4, { what: 'the dump of the captured table' });
    await k.settle();
    // The state depends on when the capture ran (DELAY, REACHABLE or STALE): compare the rest.
    expect(seen.map((r) => brief(r).replace(/:[A-Z]+$/, '')).sort()).toEqual(
      [
        `dump:192.168.77.11@br0/lan1=${MAC1}`,
        `dump:192.168.77.12@br0/lan2=${MAC2}`,
        `dump:fd77::11@br0/lan1=${MAC1}`,
        `dump:fd77::12@br0/lan2=${MAC2}`,
      ].sort(),
    );
    expect(seen.every((r) => r.usable && r.state.length === 1)).toBe(true);
    for (const d of loadFixture('neigh-events').datagrams)
      k.multicast(Math.log2(d.groups) + 1, Buffer.from(d.hex, 'hex'));
    await k.settle();
    const events = seen.filter((r) => r.type !== 'dump');
    expect(events.filter((r) => r.type === 'delete').map(brief)).toEqual([
      `delete:192.168.77.11@br0/lan1=${MAC1}:FAILED`,
    ]);
    expect(events.filter((r) => r.type === 'new')).toEqual([]); // all four were in the dump; .99 never resolved
    expect(events.every((r) => r.ifname === 'br0' && r.port === (r.mac === MAC1 ? 'lan1' : 'lan2'))).toBe(true);
    const updated = new Set(events.filter((r) => r.type === 'update').flatMap((r) => r.state));
    expect(updated.has('STALE') && updated.has('REACHABLE')).toBe(true);
    sub.unsubscribe();
  });
});
