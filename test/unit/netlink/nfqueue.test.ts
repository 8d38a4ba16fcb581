import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../src/errors.js';
import { NLM_F_REQUEST, NLMSG_ERROR } from '../../../src/netlink/enums.js';
import {
  decodeNfqConfig,
  decodeNfqVerdict,
  NFQUEUE_CONFIG_TYPE,
  NFQUEUE_VERDICT_BATCH_TYPE,
  NFQUEUE_VERDICT_TYPE,
  nfqBind,
  nfqFlags,
  nfqMaxLen,
  nfqParams,
  nfqUnbind,
  nfqVerdict,
  writeNfqVerdictMessage,
} from '../../../src/netlink/nfqueue/config.js';
import * as Q from '../../../src/netlink/nfqueue/enums.js';
import {
  decodeNfqPacket,
  encodeNfqPacket,
  type NfqPacket,
  peekNfqPacketId,
} from '../../../src/netlink/nfqueue/packet.js';
import { decodeError, encodeMessage, splitMessages } from '../../../src/netlink/nlmsg.js';
import { parseIpPacket } from '../../../src/sources/packet.js';
import { fixtureMessages, loadFixture } from '../../helpers/fixtures.js';
import { onlyDecodeErrors } from '../../helpers/fuzz.js';

const packets = (name: string) => fixtureMessages(name).filter((m) => m.type === 0x300);
const errnos = (name: string) =>
  fixtureMessages(name)
    .filter((m) => m.type === NLMSG_ERROR)
    .map((m) => decodeError(m).errno || 0); // an ACK decodes as -0
const out = packets('nfqueue-output');
const inp = packets('nfqueue-input');

describe('nfnetlink_queue golden bytes (captured from the real kernel)', () => {
  it('names the command that re-captures them', () => {
    for (const f of ['nfqueue-output', 'nfqueue-input', 'nfqueue-errors'])
      expect(loadFixture(f).command).toMatch(/capture-nfqueue\.js/);
  });

  it('decodes locally sent packets: ids 1…n, output hook, outdev, uid/gid, the nft mark, IPv4 and IPv6', () => {
    const pkts = out.map((m) => decodeNfqPacket(m.payload));
    expect(pkts.map((p) => p.id)).toEqual(pkts.map((_, i) => i + 1)); // the kernel counts per queue from 1
    expect(pkts.every((p) => p.queue === 3 && p.hook === 3 && p.outdev !== undefined && p.indev === undefined)).toBe(
      true,
    );
    expect(pkts.every((p) => p.uid === 0 && p.gid === 0 && p.timestamp === undefined)).toBe(true);
    // Only the second echo request was marked (nft `icmp sequence 2 meta mark set 0x10`); unmarked ones carry no NFQA_MARK.
    expect(pkts.map((p) => p.mark)).toEqual([undefined, 0x10, ...pkts.slice(2).map(() => undefined)]);
    const v6 = pkts.find((p) => p.family === 10)!;
    expect(v6.hwProtocol).toBe(0x86dd);
    expect(parseIpPacket(v6.payload!)).toMatchObject({
      family: 'ipv6',
      proto: 58,
      src: 'fd00:233::2',
      dst: 'fd00:233::1',
    });
    const first = parseIpPacket(pkts[0].payload!);
    expect(first).toMatchObject({ family: 'ipv4', proto: 1, src: '10.233.0.2', dst: '10.233.0.1', ttl: 64 });
    expect(first.data[0]).toBe(8); // ICMP echo request
    const syn = parseIpPacket(pkts.find((p) => p.payload!.length === 60)!.payload!);
    expect(syn).toMatchObject({ proto: 6, dport: 7000, tcpFlags: 0x02 });
  });

  it('decodes received packets: input hook, indev, source MAC, kernel timestamps, cut payloads with NFQA_CAP_LEN', () => {
    const pkts = inp.map((m) => decodeNfqPacket(m.payload));
    expect(pkts.every((p) => p.queue === 4 && p.hook === 1 && p.indev !== undefined && p.hwaddr?.length === 6)).toBe(
      true,
    );
    const pings = pkts.filter((p) => p.capLen !== undefined);
    // copy_range 64 cut the 84-byte echo requests; the kernel says how long they were.
    expect(pings.map((p) => [p.capLen, p.payload!.length])).toEqual([
      [84, 64],
      [84, 64],
    ]);
    expect(pkts.filter((p) => p.capLen === undefined).every((p) => p.payload!.length < 64)).toBe(true);
    expect(pkts.filter((p) => p.timestamp).length).toBeGreaterThan(pkts.length / 2);
    expect(pkts[0].timestamp!.sec).toBeGreaterThan(1_600_000_000n);
    expect(pkts.every((p) => p.skbInfo === undefined || (p.skbInfo & ~7) === 0)).toBe(true);
  });

  it('re-encodes every packet message to the very same bytes', () => {
    for (const m of [...out, ...inp]) {
      const { type, payload } = encodeNfqPacket(decodeNfqPacket(m.payload));
      expect(type).toBe(m.type);
      expect(payload.equals(m.payload)).toBe(true);
    }
  });

  it('shows the refusals: a second bind EPERM, a verdict for an unknown id ENOENT, one on an unbound queue ENODEV', () => {
    expect(errnos('nfqueue-errors')[0]).toBe(1);
    expect(errnos('nfqueue-output').slice(-2)).toEqual([2, 19]);
    expect(errnos('nfqueue-output').slice(0, 4)).toEqual([0, 0, 0, 0]); // bind, params, maxlen, flags ACKed
  });

  it('keeps unknown attributes and round-trips them', () => {
    const p = decodeNfqPacket(out[0].payload);
    const withNew: NfqPacket = { ...p, unknown: [{ type: 30, nested: false, value: Buffer.from([1, 2, 3, 4]) }] };
    const back = decodeNfqPacket(encodeNfqPacket(withNew).payload);
    expect(back.unknown).toEqual(withNew.unknown);
    expect(back.payload!.equals(p.payload!)).toBe(true);
  });

  it('gives DecodeError, never another throw, on truncated, corrupted and random input', () => {
    const base = inp[0].payload;
    // peekNfqPacketId never throws at all.
    onlyDecodeErrors(base, decodeNfqPacket, peekNfqPacketId);
  });

  it('refuses a message without NFQA_PACKET_HDR (no id, no verdict possible), but still peeks ids from damaged ones', () => {
    expect(() => decodeNfqPacket(Buffer.from([2, 0, 0, 3]))).toThrow(/no NFQA_PACKET_HDR/);
    const damaged = Buffer.from(out[4].payload);
    const len = decodeNfqPacket(damaged).payload!.length;
    expect(damaged.readUInt16LE(damaged.length - len - 2)).toBe(Q.NFQA_PAYLOAD); // the last attribute's header
    damaged.writeUInt16LE(len + 40, damaged.length - len - 4); // now it overruns the message
    expect(() => decodeNfqPacket(damaged)).toThrow(DecodeError);
    expect(peekNfqPacketId(damaged)).toBe(5);
  });
});

describe('nfqueue config and verdict messages', () => {
  it('builds the messages the kernel accepted in the capture, and reads them back', () => {
    expect(NFQUEUE_CONFIG_TYPE).toBe(0x302);
    expect(NFQUEUE_VERDICT_TYPE).toBe(0x301);
    expect(NFQUEUE_VERDICT_BATCH_TYPE).toBe(0x303);
    expect(nfqBind(3).toString('hex')).toBe('00000003' + '0800' + '0100' + '01000000');
    expect(decodeNfqConfig(nfqBind(3))).toEqual({ queue: 3, cmd: { command: Q.NFQNL_CFG_CMD_BIND, pf: 0 } });
    expect(decodeNfqConfig(nfqUnbind(7)).cmd?.command).toBe(Q.NFQNL_CFG_CMD_UNBIND);
    // struct nfqnl_msg_config_params is packed: 5 bytes, padded to 8 in the attribute.
    expect(nfqParams(3, 0xffff).subarray(4).toString('hex')).toBe('0900' + '0200' + '0000ffff02' + '000000');
    expect(decodeNfqConfig(nfqParams(3, 64, Q.NFQNL_COPY_META)).params).toEqual({ copyRange: 64, mode: 1 });
    expect(decodeNfqConfig(nfqMaxLen(3, 1024)).maxLen).toBe(1024);
    expect(decodeNfqConfig(nfqFlags(3, 1, 9))).toEqual({ queue: 3, flags: 1, mask: 9 });
  });

  it('round-trips verdicts with and without a mark', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 65535 }),
        fc.constantFrom(Q.NF_DROP, Q.NF_ACCEPT, Q.NF_REPEAT),
        fc.nat({ max: 0xffffffff }),
        fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined }),
        (queue, verdict, id, mark) => {
          const v = mark === undefined ? { queue, verdict, id } : { queue, verdict, id, mark };
          expect(decodeNfqVerdict(nfqVerdict(v))).toEqual(v);
          // The allocation-free writer makes the very bytes of the generic encoder, back to back.
          const msg = encodeMessage(
            { type: NFQUEUE_VERDICT_TYPE, flags: NLM_F_REQUEST, seq: 0, pid: 0 },
            nfqVerdict(v),
          );
          const buf = Buffer.alloc(100);
          const end = writeNfqVerdictMessage(
            buf,
            writeNfqVerdictMessage(buf, 0, NFQUEUE_VERDICT_TYPE, v),
            NFQUEUE_VERDICT_TYPE,
            v,
          );
          expect(buf.subarray(0, end).equals(Buffer.concat([msg, msg]))).toBe(true);
          expect(splitMessages(buf.subarray(0, end)).map((m) => decodeNfqVerdict(m.payload))).toEqual([v, v]);
        },
      ),
    );
    expect(nfqVerdict({ queue: 3, verdict: Q.NF_ACCEPT, id: 5, mark: 0x20 }).toString('hex')).toBe(
      '00000003' + '0c000200' + '00000001' + '00000005' + '08000300' + '00000020',
    );
  });
});
