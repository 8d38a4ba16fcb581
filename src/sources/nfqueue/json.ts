/** NDJSON for packet records: the payload as hex (JSON.stringify would spell a Buffer out byte by byte). */
import type { PacketRecord } from './record.js';

/** A queued packet as one line of JSON (payload as hex). */
export function packetToJson(r: PacketRecord): string {
  const { payload, ...rest } = r;
  return JSON.stringify({ ...rest, payload: payload.toString('hex') });
}
