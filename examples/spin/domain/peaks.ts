/**
 * `get_peak_info` (docs/spin-protocol.md §2.5): SPIN's page asks on
 * `SPIN/commands` for a node's traffic per minute over the last hour, as
 * SPIN's peak-detection tool answered. Built from the traffic the core
 * already aggregates every second; bounded to MAX_NODES nodes and 60
 * minutes each.
 */
import type { SpinMessage, TrafficFlow } from './messages.js';

const WINDOW_MIN = 60;
const MAX_NODES = 10_000;

interface Minute {
  minute: number;
  bytes: number;
  packets: number;
}

export class PeakTable {
  private readonly byNode = new Map<number, Minute[]>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Counts one traffic message's flows for both ends. */
  add(flows: readonly TrafficFlow[]): void {
    const minute = Math.floor(this.now() / 60_000);
    for (const f of flows) for (const id of [f.from, f.to]) this.count(id, minute, f.size, f.count);
  }

  /** The peakinfo reply for a node (only `command` and `argument` when there is no history, as the tool). */
  info(id: number): Record<string, unknown> {
    const reply: Record<string, unknown> = { command: 'peakinfo', argument: String(id) };
    const mins = this.window(id);
    if (mins.length === 0) return reply;
    const current = Math.floor(this.now() / 60_000);
    const items: Record<string, { bytes: number; packets: number }> = {};
    for (const m of mins)
      items[String(m.minute - current === 0 ? 0 : m.minute - current)] = { bytes: m.bytes, packets: m.packets };
    reply.result = {
      items,
      maxbytes: Math.max(...mins.map((m) => m.bytes)),
      maxpackets: Math.max(...mins.map((m) => m.packets)),
      enforcing: false,
    };
    return reply;
  }

  /** Drops minutes (and nodes) older than the window. */
  expire(): void {
    for (const id of [...this.byNode.keys()]) if (this.window(id).length === 0) this.byNode.delete(id);
  }

  get size(): number {
    return this.byNode.size;
  }

  private window(id: number): Minute[] {
    const mins = this.byNode.get(id);
    if (!mins) return [];
    const oldest = Math.floor(this.now() / 60_000) - (WINDOW_MIN - 1);
    while (mins.length > 0 && mins[0].minute < oldest) mins.shift();
    return mins;
  }

  private count(id: number, minute: number, bytes: number, packets: number): void {
    let mins = this.byNode.get(id);
    if (!mins) {
      if (this.byNode.size >= MAX_NODES) return;
      this.byNode.set(id, (mins = []));
    }
    const last = mins[mins.length - 1];
    if (last?.minute === minute) {
      last.bytes += bytes;
      last.packets += packets;
    } else mins.push({ minute, bytes, packets });
    if (mins.length > WINDOW_MIN) mins.shift();
  }
}

/** A `SPIN/commands` payload → the peakinfo message to publish, or undefined for anything else. */
export function peakCommand(payload: Buffer, peaks: PeakTable): SpinMessage | undefined {
  if (payload.length > 4096) return undefined;
  let cmd: { command?: unknown; argument?: unknown };
  try {
    cmd = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  if (cmd?.command !== 'get_peak_info') return undefined;
  const id = Number(cmd.argument);
  if (!Number.isSafeInteger(id) || id < 0) return undefined;
  return { topic: 'SPIN/traffic', payload: JSON.stringify(peaks.info(id)), retain: false };
}
