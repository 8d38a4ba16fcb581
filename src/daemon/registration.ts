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
