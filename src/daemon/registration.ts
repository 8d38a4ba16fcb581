/**
 * A client's claim on the shared queue: its mark/mask, the packets it holds
 * for a verdict, its counters; and the mark arithmetic that decides who owns
 * a packet.
 */
import { formatMark } from '../auth/marks.js';
import { cidrMatcher } from '../filters/expr/cidr.js';
import { compileRedact } from '../filters/lib/scope.js';
import type { PacketRecord } from '../sources/nfqueue/record.js';
import type { AgedMap } from '../util/aged-map.js';

export type Verdict = 'accept' | 'drop' | 'repeat';

/** What the multiplexer needs of a client connection. */
export interface QueueClient {
  readonly cid: number;
  readonly uid: number;
  /** The client has gone (its registrations were released): it may register nothing more. */
  readonly closed?: boolean;
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
  pending: AgedMap<number, number>;
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
export { formatMark };

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

const redactors = new WeakMap<string[], (r: Record<string, unknown>) => Record<string, unknown>>();

/** Removes the principal's redacted fields from a packet frame (copying what it changes), as redact() does to records. */
export function redactPacket(frame: Record<string, unknown>, paths: string[]): Record<string, unknown> {
  if (paths.length === 0) return frame;
  let redact = redactors.get(paths);
  if (!redact) redactors.set(paths, (redact = compileRedact(paths)));
  return redact(frame);
}

/** Why a client's verdict for `v.packetId` is refused (`otherOwns`: delivered to another registration), or undefined. */
export function verdictProblem(
  reg: Registration,
  v: { packetId: number; mark?: number },
  otherOwns: boolean,
): string | undefined {
  if (!reg.pending.has(v.packetId)) {
    if (otherOwns) return 'that packet was not delivered to you';
    return 'no such packet waits for your verdict (never delivered to you, already decided, or timed out)';
  }
  // A new mark must keep the packet this client's: otherwise a "repeat" could hand it to another client.
  if (v.mark !== undefined && ((v.mark & reg.mask) >>> 0 !== reg.mark || v.mark < 0 || v.mark > 0xffffffff))
    return `mark ${hex(v.mark)} is outside your registration ${formatMark(reg.mark, reg.mask)}`;
  return undefined;
}

/** A registration as `status` shows it. */
export function registrationStatus(r: Registration): Record<string, unknown> {
  return {
    reg: r.id,
    client: r.client.cid,
    uid: r.client.uid,
    mark: formatMark(r.mark, r.mask),
    pending: r.pending.size,
    delivered: r.delivered,
    verdicts: r.verdicts,
    timedOut: r.timedOut,
    refused: r.refused,
    undeliverable: r.undeliverable,
  };
}
