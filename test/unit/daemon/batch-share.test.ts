import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, parseServerFrame } from '../../../src/daemon/protocol.js';
import { batchOf, recordsFrame } from '../../../src/daemon/remote-flow.js';

const recs = Array.from({ length: 1024 }, (_, i) => ({ id: i, orig: { dst: `127.0.${i >> 8}.${i & 255}` } }));
const cut = (size: number) =>
  Array.from({ length: recs.length / size }, (_, k) => recs.slice(k * size, (k + 1) * size));

describe('flowgrabd record batches: encoded once for every client that gets them', () => {
  it('flows flushing the same records in turn (all of flow 1, then flow 2) share each batch and its encodings', () => {
    // A busy turn: every flow's 1024 records flush as four 256-record batches, flow after flow.
    const flows = [cut(256), cut(256), cut(256)];
    const seen = flows.map((batches) => batches.map((b) => batchOf(b)));
    for (const other of seen.slice(1)) for (const [k, b] of other.entries()) expect(b).toBe(seen[0][k]);
    // The same flow id and no node counts: one frame for all; another id: its own frame of the same body.
    for (const compact of [true, false]) {
      const a = recordsFrame(seen[0][2], compact, 1, '');
      expect(recordsFrame(seen[1][2], compact, 1, '')).toBe(a);
      const b = recordsFrame(seen[1][2], compact, 2, '');
      expect(b).not.toBe(a);
      const event = parseServerFrame(b.subarray(4), compact).event;
      expect(event).toEqual({ v: PROTOCOL_VERSION, ev: 'records', flow: 2, records: recs.slice(512, 768) });
    }
  });

  it('other records, or the same ones cut differently, are another batch', () => {
    const [first] = cut(256);
    const b = batchOf(first);
    expect(batchOf(first.map((r) => ({ ...r })))).not.toBe(b);
    expect(batchOf(first.slice(0, 255))).not.toBe(b);
    expect(batchOf([...first.slice(0, 255), recs[1000]])).not.toBe(b);
    expect(batchOf([...first])).toBe(b);
  });
});
