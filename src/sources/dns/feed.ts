/**
 * One shared DNS feed per (netns, NFLOG group): binds the group with
 * queue-threshold 1 and sequence numbers, installs the logging rules, and
 * turns logged packets into DnsRecords. Sequence gaps are counted as loss,
 * exactly; malformed packets become records flagged with `error`.
 */
import { NETLINK_NETFILTER } from '../../netlink/enums.js';
import { readerGone } from '../../netlink/fd-transport.js';
import { NF_HOOK_NAMES, NFULNL_MSG_PACKET } from '../../netlink/nflog/enums.js';
import { decodeNflogPacket, type NflogPacket } from '../../netlink/nflog/packet.js';
import { NFNL_SUBSYS_ULOG, nfType } from '../../netlink/nfnetlink.js';
import type { NetlinkMessage } from '../../netlink/nlmsg.js';
import { NetlinkSocket } from '../../netlink/socket.js';
import type { TransportFactory } from '../../netlink/transport.js';
import { Subject } from '../../rx.js';
import { Fanout } from '../fanout.js';
import type { NftTable } from '../firewall/nft.js';
import { bindNflogGroup, NflogSequence, nflogTimeMs } from '../nflog/group.js';
import { publishNotice, type SourceNotice } from '../notice.js';
import { type L4Packet, parseIpPacket } from '../packet.js';
import { type DnsFields, decodeDns, dnsErrorOf, dnsFields } from './message.js';
import type { DnsConfig } from './options.js';
import type { DnsRecord } from './record.js';
import { QueryMatcher } from './rtt.js';
import { installDnsRules } from './rules.js';
import { TcpReassembler } from './tcp.js';
import { type DnsErrorCode, DnsWireError } from './wire.js';

const PACKET_TYPE = nfType(NFNL_SUBSYS_ULOG, NFULNL_MSG_PACKET);
const EMPTY: DnsFields = { kind: 'query', id: 0, qname: '', qtype: '', rcode: '', answers: [], resolved: [] };

export class DnsFeed {
  readonly records = new Fanout<DnsRecord>();
  readonly notices = new Subject<SourceNotice>();
  readonly ready: Promise<void>;
  private readonly sock: NetlinkSocket;
  private readonly matcher: QueryMatcher;
  private readonly tcp = new TcpReassembler();
  private readonly timer: NodeJS.Timeout;
  private rules?: NftTable;
  private readonly seq = new NflogSequence();
  private closed = false;

  constructor(
    readonly cfg: DnsConfig,
    transport: TransportFactory,
  ) {
    this.matcher = new QueryMatcher(65536, cfg.queryTimeoutMs);
    // Whole packets can be large: read each datagram at its exact size.
    this.sock = NetlinkSocket.open(
      {
        protocol: NETLINK_NETFILTER,
        netns: cfg.netns,
        recvBufferBytes: cfg.recvBufferBytes,
        peek: true,
        batched: cfg.batchedReceive,
        // Output packets carry no kernel timestamp: they are stamped on arrival, so no lingering.
        lingerMs: 0,
      },
      transport,
    );
    this.sock.onEvent((m) => this.onMessage(m));
    this.sock.onError((err) =>
      readerGone(err)
        ? this.records.error(err)
        : this.notice({ kind: 'warning', message: `nflog socket: ${err.message}` }),
    );
    this.timer = setInterval(() => {
      const now = Date.now();
      this.matcher.prune(now);
      this.tcp.expire(now);
    }, 5000);
    this.timer.unref();
    this.ready = this.setup();
    this.ready.catch(() => {}); // surfaced to subscribers by source.ts
  }

  private async setup(): Promise<void> {
    await bindNflogGroup(this.sock, this.cfg.group, this.cfg.copyRange, this.cfg.netns);
    if (this.cfg.installRules && !this.closed) this.rules = await installDnsRules(this.cfg);
    if (this.closed) await this.rules?.remove();
  }

  /** Closes the socket at once; the rules go asynchronously (awaitable). */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    clearInterval(this.timer);
    this.sock.close();
    this.records.complete();
    this.notices.complete();
    return this.ready.then(
      () => this.rules?.remove(),
      () => this.rules?.remove(),
    );
  }

  private notice(n: Omit<SourceNotice, 'source' | 'ts'>): void {
    const full: SourceNotice = { source: 'dns', ts: Date.now(), ...n };
    if (this.cfg.netns) full.netns = this.cfg.netns;
    publishNotice(full, this.notices);
  }

  private onMessage(m: NetlinkMessage): void {
    if (m.type !== PACKET_TYPE) return;
    let pkt: NflogPacket;
    try {
      pkt = decodeNflogPacket(m.payload);
    } catch (err) {
      this.notice({
        kind: 'loss',
        where: 'decode',
        count: 1,
        message: `undecodable NFLOG message: ${(err as Error).message}`,
      });
      return;
    }
    this.checkSeq(pkt.seq);
    if (!pkt.payload) return;
    const ts = nflogTimeMs(pkt);
    let ip: L4Packet;
    try {
      ip = parseIpPacket(pkt.payload);
    } catch (err) {
      this.notice({
        kind: 'loss',
        where: 'decode',
        count: 1,
        message: `unparseable logged packet: ${(err as Error).message}`,
      });
      return;
    }
    // Fragments: only a first fragment has ports, so only it matches the `udp dport 53` rules; the later
    // ones never reach NFLOG and the datagram cannot be rebuilt here. The first is flagged 'fragment'.
    // (With conntrack loaded the kernel defragments before these hooks, so this is rare.)
    if (ip.fragment || ip.sport === undefined) return;
    const hook = NF_HOOK_NAMES[pkt.hook] ?? 'unknown';
    if (ip.proto === 17) this.emit(ip, 'udp', hook, ts, ip.data, ip.firstFragment);
    else if (ip.proto === 6) {
      const r = this.tcp.push({
        key: `${ip.src}|${ip.sport}|${ip.dst}|${ip.dport}`,
        seq: ip.seq!,
        flags: ip.tcpFlags!,
        data: ip.data,
        now: ts,
      });
      if (r.dropped) this.notice({ kind: 'loss', where: 'decode', count: 1, message: r.dropped });
      if (r.evicted) {
        const message = `${r.evicted} TCP DNS streams evicted to stay within the reassembly bounds`;
        this.notice({ kind: 'loss', where: 'decode', count: r.evicted, message });
      }
      for (const msg of r.messages) this.emit(ip, 'tcp', hook, ts, msg);
    }
  }

  private checkSeq(seq: number | undefined): void {
    const lost = this.seq.take(seq);
    if (lost > 0) {
      this.notice({
        kind: 'loss',
        where: 'kernel',
        count: lost,
        message: `kernel dropped ${lost} logged DNS packets (receive buffer full)`,
      });
    }
  }

  private emit(
    ip: L4Packet,
    transport: 'udp' | 'tcp',
    hook: DnsRecord['hook'],
    ts: number,
    payload: Buffer,
    fragment = false,
  ): void {
    let f: DnsFields;
    let error: { code: DnsErrorCode; message: string } | undefined;
    try {
      if (fragment) throw new DnsWireError('fragment', 'first IP fragment of a larger datagram', 0);
      f = dnsFields(decodeDns(payload));
    } catch (err) {
      f = {
        ...EMPTY,
        kind: ip.dport === 53 ? 'query' : 'response',
        id: payload.length >= 2 ? payload.readUInt16BE(0) : 0,
      };
      error = dnsErrorOf(err);
    }
    const query = f.kind === 'query';
    const r: DnsRecord = {
      ts,
      kind: f.kind,
      family: ip.family,
      transport,
      client: query ? ip.src : ip.dst,
      clientPort: (query ? ip.sport : ip.dport) ?? 0,
      server: query ? ip.dst : ip.src,
      serverPort: (query ? ip.dport : ip.sport) ?? 0,
      hook,
      id: f.id,
      qname: f.qname,
      qtype: f.qtype,
      rcode: f.rcode,
      answers: f.answers,
      resolved: f.resolved,
    };
    if (error) {
      r.error = error.code;
      r.errorMessage = `not a DNS message: ${error.message}`;
    } else if (query) this.matcher.query(r.client, r.clientPort, r.server, r.id, ts);
    else {
      const rtt = this.matcher.response(r.client, r.clientPort, r.server, r.id, ts);
      if (rtt !== undefined) r.rtt = rtt;
    }
    if (this.cfg.netns) r.netns = this.cfg.netns;
    this.records.next(r);
  }
}
