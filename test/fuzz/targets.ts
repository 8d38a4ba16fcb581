/**
 * Fuzz targets: each takes bytes and runs one decoder the way flowgrab runs
 * it on what the kernel (and, through it, strangers) send. A target returns
 * normally, throws a DecodeError (a typed refusal: fine), or throws a
 * FuzzFailure / anything else (a bug). Seeds come from the golden captures.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as dnsPacket from 'dns-packet';
import { decodeCtMessage } from '../../src/netlink/conntrack/messages.js';
import { decodeNflogPacket } from '../../src/netlink/nflog/packet.js';
import { NFNL_SUBSYS_CTNETLINK } from '../../src/netlink/nfnetlink.js';
import { decodeNfqConfig, decodeNfqVerdict } from '../../src/netlink/nfqueue/config.js';
import { decodeNfqPacket } from '../../src/netlink/nfqueue/packet.js';
import { decodeError, type NetlinkMessage, splitMessages, splitMessagesLenient } from '../../src/netlink/nlmsg.js';
import { decodeLinkMessage } from '../../src/netlink/rtnl/link.js';
import { decodeNeighMessage } from '../../src/netlink/rtnl/neigh.js';
import { decodeUnixDiagMessage, decodeUnixDiagReq } from '../../src/netlink/sockdiag/unix.js';
import { conntrackRecordFromMessage } from '../../src/sources/conntrack/decode.js';
import { toConntrackRecord } from '../../src/sources/conntrack/record.js';
import { decodeDnsCounted, dnsFields } from '../../src/sources/dns/message.js';
import { TcpReassembler } from '../../src/sources/dns/tcp.js';
import { parseIpPacket } from '../../src/sources/packet.js';
import { prng, randomCtAttrs } from '../helpers/ct-tree.js';

export class FuzzFailure extends Error {}

export interface Target {
  name: string;
  seeds: Buffer[];
  /** false when every decoder it ran refused the input with a DecodeError. */
  run(b: Buffer): boolean;
}

function fixtureDir(): string {
  const here = import.meta.dirname;
  // Run from test/fuzz (vitest, tsx) or from dist/test/fuzz (compiled).
  for (const d of [join(here, '../fixtures/netlink'), join(here, '../../../test/fixtures/netlink')]) {
    if (existsSync(join(d, 'nflog-dns.json'))) return d;
  }
  throw new Error('fuzz: test/fixtures/netlink not found');
}

function messages(name: string): NetlinkMessage[] {
  const fx = JSON.parse(readFileSync(join(fixtureDir(), `${name}.json`), 'utf8')) as { datagrams: { hex: string }[] };
  return fx.datagrams.flatMap((d) => splitMessages(Buffer.from(d.hex, 'hex')));
}

/** A message of `type` around bytes `b` (the fuzzed part is the payload). */
const msg = (type: number, b: Buffer, flags = 0): NetlinkMessage => ({ type, flags, seq: 0, pid: 0, payload: b });
const datagram = (m: NetlinkMessage) => {
  const b = Buffer.alloc(16 + m.payload.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(m.type, 4);
  b.writeUInt16LE(m.flags, 6);
  m.payload.copy(b, 16);
  return b;
};

function checkDns(b: Buffer): boolean {
  let m: dnsPacket.Packet;
  let bytes: number;
  try {
    ({ msg: m, bytes } = decodeDnsCounted(b));
  } catch (err) {
    if ((err as { reason?: string }).reason === undefined) throw err;
    return false;
  }
  if (!(bytes <= b.length)) throw new FuzzFailure(`dns consumed ${bytes} of ${b.length}`);
  // What we accept, dns-packet alone decodes the same (names through our cache included).
  if (JSON.stringify(dnsPacket.decode(b)) !== JSON.stringify(m))
    throw new FuzzFailure('decodeDns differs from dns-packet');
  for (const a of [...(m.answers ?? []), ...(m.authorities ?? []), ...(m.additionals ?? [])]) {
    if (a.type === 'A' && isIP(a.data) !== 4) throw new FuzzFailure(`A record ${a.data}`);
    if (a.type === 'AAAA' && isIP(a.data) !== 6) throw new FuzzFailure(`AAAA record ${a.data}`);
  }
  dnsFields(m);
  return true;
}

export function targets(): Target[] {
  const nflog = messages('nflog-dns').filter((m) => m.type === 0x400); // NFULNL_MSG_PACKET, not config ACKs
  const ips = nflog.map((m) => decodeNflogPacket(m.payload).payload).filter((p): p is Buffer => !!p);
  const dnsSeeds = ips.map((p) => parseIpPacket(p)).flatMap((p) => (p.proto === 17 ? [p.data] : []));
  const ct = [...messages('conntrack-dump'), ...messages('conntrack-events')].filter(
    (m) => m.type >> 8 === NFNL_SUBSYS_CTNETLINK,
  );
  const nfq = [...messages('nfqueue-input'), ...messages('nfqueue-output'), ...messages('nfqueue-errors')];
  const neigh = [...messages('neigh-dump'), ...messages('neigh-events'), ...messages('neigh-fdb')];
  const links = messages('neigh-links');
  const diag = messages('unix-diag');
  // Random attribute trees (repeated, missing, mis-sized attributes) behind an nfgenmsg.
  const trees = Array.from({ length: 256 }, (_, i) =>
    Buffer.concat([Buffer.from([i & 1 ? 10 : 2, 0, 0, 0]), randomCtAttrs(prng(i))]),
  );
  const tcp = new TcpReassembler({ maxTotalBytes: 8 << 20 });
  let clock = 0;
  return [
    { name: 'dns', seeds: dnsSeeds, run: checkDns },
    {
      name: 'ip/udp/tcp packet',
      seeds: ips,
      run: (b) => {
        const p = parseIpPacket(b);
        if (p.fragment || p.sport === undefined) return true;
        if (p.proto === 17) checkDns(p.data);
        if (p.proto === 6) {
          const key = `${p.sport & 3}`; // few keys, so streams accumulate segments
          const r = tcp.push({ key, seq: p.seq!, flags: p.tcpFlags!, data: p.data, now: clock++ });
          for (const m of r.messages) checkDns(m);
        }
        return true;
      },
    },
    {
      name: 'nlmsg split',
      seeds: nflog.slice(0, 8).map(datagram),
      run: (b) => {
        splitMessagesLenient(b);
        return accepted(tryDecode(() => splitMessages(b)));
      },
    },
    {
      name: 'nlmsg error',
      seeds: [Buffer.from('eaffffff00000080000000000000000000000000', 'hex'), Buffer.alloc(20)],
      run: (b) => {
        return accepted(...[0, 0x100, 0x200, 0x300].map((flags) => tryDecode(() => decodeError(msg(2, b, flags)))));
      },
    },
    {
      name: 'conntrack fast vs reference',
      seeds: [...ct.map((m) => m.payload), ...trees],
      run: (b) => {
        const m = msg(ct[0].type, b);
        const fast = tryDecode(() => conntrackRecordFromMessage(m, 7));
        const ref = tryDecode(() => {
          const { kind, entry } = decodeCtMessage(m);
          return toConntrackRecord(kind, entry, 7);
        });
        if (!sameData(fast, ref)) throw new FuzzFailure('fast and reference conntrack decoders disagree');
        return accepted(fast);
      },
    },
    { name: 'nflog', seeds: nflog.map((m) => m.payload), run: (b) => accepted(tryDecode(() => decodeNflogPacket(b))) },
    {
      name: 'nfqueue',
      seeds: nfq.map((m) => m.payload),
      run: (b) => {
        return accepted(...[decodeNfqPacket, decodeNfqConfig, decodeNfqVerdict].map((f) => tryDecode(() => f(b))));
      },
    },
    {
      name: 'neigh',
      seeds: [...neigh, ...links].map((m) => m.payload),
      run: (b) => {
        return accepted(
          tryDecode(() => decodeNeighMessage(msg(neigh[0].type, b))),
          tryDecode(() => decodeLinkMessage(msg(links[0].type, b))),
        );
      },
    },
    {
      name: 'sockdiag',
      seeds: diag.map((m) => m.payload),
      run: (b) => {
        return accepted(
          tryDecode(() => decodeUnixDiagMessage(msg(diag.at(-1)!.type, b))),
          tryDecode(() => decodeUnixDiagReq(b)),
        );
      },
    },
  ];
}

type Outcome = { ok: unknown } | { error: 'decode' };
const accepted = (...os: Outcome[]) => os.some((o) => 'ok' in o);

/** Runs `f`: a DecodeError becomes an outcome, anything else propagates (the driver reports it). */
function tryDecode(f: () => unknown): Outcome {
  try {
    return { ok: f() };
  } catch (err) {
    if ((err as { code?: string }).code === 'FG_ERR_DECODE') return { error: 'decode' };
    throw err;
  }
}

function sameData(a: unknown, b: unknown): boolean {
  const sort = (x: unknown): unknown =>
    Array.isArray(x)
      ? x.map(sort)
      : x && typeof x === 'object'
        ? Object.fromEntries(
            Object.entries(x)
              .sort(([k], [l]) => (k < l ? -1 : 1))
              .map(([k, v]) => [k, sort(v)]),
          )
        : x;
  const norm = (x: unknown) => JSON.stringify(sort(JSON.parse(JSON.stringify(x))));
  return norm(a) === norm(b);
}
