/**
 * QueuedPacket: a PacketRecord with its verdict() method. The method lives
 * on the prototype and the route back to the queue in a private field, so
 * JSON, spreads and equality see only the record's data.
 */
import { FlowgrabError } from '../../errors.js';
import { NF_ACCEPT, NF_DROP, NF_REPEAT } from '../../netlink/nfqueue/enums.js';
import type { VerdictName } from './options.js';
import type { PacketRecord } from './record.js';

/** Options of a verdict: a new packet mark. */
export interface VerdictOptions {
  /** Set the packet's mark (0 to 0xffffffff), e.g. for a later rule to match. */
  mark?: number;
}

export interface VerdictTarget {
  verdict(packetId: number, verdict: VerdictName, opts?: VerdictOptions): void;
}

/** A queued packet with its `verdict()` method. */
export type QueuedPacket = PacketRecord & {
  /** Accept, drop or repeat this packet; refused (throws) when it already has a verdict. */
  verdict(verdict: VerdictName, opts?: VerdictOptions): void;
};

class Queued {
  readonly #target: VerdictTarget;
  constructor(rec: PacketRecord, target: VerdictTarget) {
    Object.assign(this, rec);
    this.#target = target;
  }
  verdict(verdict: VerdictName, opts?: VerdictOptions): void {
    this.#target.verdict((this as unknown as PacketRecord).packetId, verdict, opts);
  }
}

export const queuedPacket = (rec: PacketRecord, target: VerdictTarget): QueuedPacket =>
  new Queued(rec, target) as unknown as QueuedPacket;

const CODES: Record<VerdictName, number> = { accept: NF_ACCEPT, drop: NF_DROP, repeat: NF_REPEAT };

/** The kernel's verdict number, after checking the verdict and the mark. */
export function verdictCode(v: VerdictName, opts?: VerdictOptions): number {
  const code = CODES[v];
  if (code === undefined || !Object.hasOwn(CODES, v))
    throw new FlowgrabError(
      'FG_ERR_INVALID_ARGUMENT',
      `verdict must be accept, drop or repeat, got ${JSON.stringify(v)}`,
    );
  const m = opts?.mark;
  if (m !== undefined && (!Number.isInteger(m) || m < 0 || m > 0xffffffff))
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `mark must be an integer from 0 to 0xffffffff, got ${m}`);
  return code;
}
