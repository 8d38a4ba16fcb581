/**
 * A datagram given as a window of a larger buffer (how the batched reader
 * hands over the datagrams of its ring, without a view per datagram): the
 * socket reads only inside it, whatever lies around it.
 */
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../../src/errors.js';
import { encodeMessage } from '../../../src/netlink/nlmsg.js';
import { NetlinkSocket } from '../../../src/netlink/socket.js';
import type { RawTransport, TransportHandlers } from '../../../src/netlink/transport.js';

function windowed(): { sock: NetlinkSocket; deliver: (b: Buffer, start: number, end: number) => void } {
  let h: TransportHandlers | undefined;
  const t: RawTransport = {
    port: 1,
    setHandlers: (x) => {
      h = x;
    },
    send: () => {},
    addMembership: () => {},
    dropMembership: () => {},
    drops: () => 0,
    recvBufferSize: () => 0,
    close: () => {},
  };
  const sock = NetlinkSocket.open({ protocol: 12 }, () => t);
  return { sock, deliver: (b, start, end) => h?.datagram(b, 1, false, start, end) };
}

const event = (type: number, payload: string) =>
  encodeMessage({ type, flags: 0, seq: 0, pid: 0 }, Buffer.from(payload));

describe('NetlinkSocket: a datagram as a window of a buffer', () => {
  it('reads the messages inside the window only, payloads in place', () => {
    const { sock, deliver } = windowed();
    const got: string[] = [];
    sock.onEventPayload((b, start, end, type) => got.push(`${type}:${b.toString('latin1', start, end)}`));
    const a = event(0x100, 'first');
    const c = event(0x102, 'second');
    // Garbage before and after the window: a reader that looked outside would fail or deliver it.
    const buf = Buffer.concat([Buffer.alloc(12, 0xff), a, c, Buffer.alloc(20, 0xee)]);
    deliver(buf, 12, 12 + a.length + c.length);
    expect(got).toEqual(['256:first', '258:second']);
  });

  it('a message that claims more than the window holds is reported and dropped, not read past the window', () => {
    const { sock, deliver } = windowed();
    const got: number[] = [];
    const errors: Error[] = [];
    sock.onEventPayload((_b, _s, _e, type) => got.push(type));
    sock.onError((e) => errors.push(e));
    const a = event(0x100, 'ok');
    const b = event(0x101, 'cut short');
    // The window ends 4 bytes into b's payload; the bytes after it would make b whole.
    const buf = Buffer.concat([a, b]);
    deliver(buf, 0, a.length + 20);
    expect(got).toEqual([0x100]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(DecodeError);
    // Offsets are the datagram's own (from the window's start), as for a datagram in a buffer of its own.
    expect(errors[0].message).toContain('does not fit in 20 bytes; 20 bytes dropped');
    expect((errors[0] as DecodeError).offset).toBe(a.length);
  });
});
