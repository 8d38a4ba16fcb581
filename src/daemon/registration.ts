/**
 * A client's claim on the shared queue: its mark/mask, the packets it holds
 * for a verdict, its counters; and the mark arithmetic that decides who owns
 * a packet.
 */
import { cidrMatcher } from '../filters/expr/cidr.js';
import type { PacketRecord } from '../sources/nfqueue/record.js';

export type Verdict = 'accept' | 'drop' | 'repeat';

/** What the multiplexer needs of a client connection. */
export interface QueueClient {
  readonly cid: number;
  readonly uid: number;
  /** Sends packets to the client; false when it cannot take them now (backlog full). */
  deliver(reg: number, packets: Record<string, unknown>[]): boolean;
  notice(reg: number, notice: Record<string, unknown>): void;
}

export interface Registration {
  id: number;
  client: QueueClient;
  mark: number;
  mask: number;
  timeoutMs: number;
  /** Packets delivered and still waiting for this client's verdict: id → deadline. */
  pending: Map<number, number>;
  /** Address filter from the principal's scope; undefined = everything. */
  inScope?: (p: PacketRecord) => boolean;
  /** Field paths the principal may not see, removed from each packet before delivery. */
  redact: string[];
  delivered: number;
  verdicts: number;
  timedOut: number;
  refused: number;
  undeliverable: number;
  batch: Record<string, unknown>[];
}

export const hex = (n: number) => `0x${n.toString(16)}`;
export const formatMark = (mark: number, mask: number) =>
  mask === 0xffffffff ? hex(mark) : `${hex(mark)}/${hex(mask)}`;

/** Two registrations overlap when some packet mark matches both. */
export const marksOverlap = (a: { mark: number; mask: number }, b: { mark: number; mask: number }) =>
  ((a.mark ^ b.mark) & a.mask & b.mask) >>> 0 === 0;

export function scopeTest(cidrs: string[] | undefined): ((p: PacketRecord) => boolean) | undefined {
  if (!cidrs) return undefined;
  const inside = cidrs.map(cidrMatcher);
  return (p) => p.ip !== undefined && inside.some((m) => m(p.ip?.src) || m(p.ip?.dst));
}

/** A packet as it travels to a client: the payload as hex, no verdict method. */
export function packetFrame(p: PacketRecord): Record<string, unknown> {
  const { payload, ...rest } = p;
  return { ...rest, payload: payload.toString('hex') };
}

/** A principal's mark ranges: `marks: ["0x10/0xf0"]` (policy wiring pending; read through this small type). */
type WithMarks = { marks?: string[] };

/** "0x10/0xf0" or "0x10" (all 32 bits) as numbers; undefined when malformed. */
export function parseMarkRange(text: string): { mark: number; mask: number } | undefined {
  const m = /^(0x[0-9a-f]{1,8}|\d{1,10})(?:\/(0x[0-9a-f]{1,8}|\d{1,10}))?$/i.exec(text.trim());
  if (!m) return undefined;
  const mark = Number(m[1]);
  const mask = m[2] === undefined ? 0xffffffff : Number(m[2]);
  if (mark > 0xffffffff || mask > 0xffffffff) return undefined;
  return { mark: (mark & mask) >>> 0, mask: mask >>> 0 };
}

/** True when every mark `inner` matches is also matched by `outer` (outer's fixed bits are fixed alike in inner). */
export const markInside = (inner: { mark: number; mask: number }, outer: { mark: number; mask: number }) =>
  (outer.mask & ~inner.mask) >>> 0 === 0 && ((inner.mark ^ outer.mark) & outer.mask) >>> 0 === 0;

/**
 * Why a principal may not register mark/mask, or undefined. With `marks`,
 * the registration must lie inside one of its ranges; without, anything but
 * the whole mark space (mask 0, which would lock every other client out)
 * unless the principal is root's.
 */
export function markRefusal(principal: object, uid: number, reg: { mark: number; mask: number }): string | undefined {
  const ranges = (principal as WithMarks).marks;
  if (ranges === undefined) {
    if (reg.mask === 0 && uid !== 0)
      return `mark ${formatMark(reg.mark, reg.mask)} claims every packet: your policy grants no such range`;
    return undefined;
  }
  for (const text of ranges) {
    const r = parseMarkRange(text);
    if (r && markInside(reg, r)) return undefined;
  }
  return `mark ${formatMark(reg.mark, reg.mask)} is outside your mark ranges (${ranges.join(', ') || 'none'})`;
}

/** Removes the principal's redacted field paths ("ip.src", "payload") from a packet frame, copying what it changes. */
export function redactPacket(frame: Record<string, unknown>, paths: string[]): Record<string, unknown> {
  if (paths.length === 0) return frame;
  const out = { ...frame };
  for (const path of paths) {
    const keys = path.split('.');
    let at: Record<string, unknown> = out;
    for (let i = 0; i < keys.length - 1; i++) {
      const next = at[keys[i]];
      if (typeof next !== 'object' || next === null) {
        at = undefined as never;
        break;
      }
      // A copy, so the packet's own objects (shared with nothing else today) stay as the kernel gave them.
      const copy = Array.isArray(next) ? [...next] : { ...(next as Record<string, unknown>) };
      at[keys[i]] = copy;
      at = copy as Record<string, unknown>;
    }
    if (at) delete at[keys[keys.length - 1]];
  }
  return out;
}
