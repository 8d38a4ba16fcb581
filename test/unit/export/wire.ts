/** A minimal reader of IPFIX / NetFlow v9 messages for the tests: header fields and sets by id. */
export interface WireSet {
  id: number;
  /** The set's bytes after its 4-byte header. */
  body: Buffer;
}
export interface WireMessage {
  version: number;
  /** IPFIX: length; NetFlow v9: count. */
  lengthOrCount: number;
  sets: WireSet[];
  header: Buffer;
}

export function readMessage(m: Buffer): WireMessage {
  const version = m.readUInt16BE(0);
  const hl = version === 10 ? 16 : 20;
  if (version === 10 && m.readUInt16BE(2) !== m.length)
    throw new Error(`IPFIX length ${m.readUInt16BE(2)} ≠ ${m.length}`);
  const sets: WireSet[] = [];
  let o = hl;
  while (o < m.length) {
    const id = m.readUInt16BE(o);
    const len = m.readUInt16BE(o + 2);
    if (len < 4 || o + len > m.length) throw new Error(`bad set length ${len} at ${o}`);
    sets.push({ id, body: m.subarray(o + 4, o + len) });
    o += len;
  }
  return { version, lengthOrCount: m.readUInt16BE(2), sets, header: m.subarray(0, hl) };
}

export const hex = (s: string) => Buffer.from(s.replace(/#[^\n]*/g, '').replace(/\s+/g, ''), 'hex');
