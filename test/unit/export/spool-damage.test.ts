/**
 * A spool whose files went bad (a bit flipped on disk, a tail a crash left zeroed, a length that cannot be):
 * what can be read is handed out, and what cannot is counted lost, once, never dropped without a word.
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Spool, SpoolPump } from '../../../src/export/spool/index.js';
import { HEADER } from '../../../src/export/spool/segment.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const rec = (i: number) => Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(40) }));
const FRAME = HEADER + rec(0).length;

/** A spool dir holding records 0..n-1 undelivered; returns it with its one segment's path. */
function written(n: number): { dir: string; seg: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fg-spool-bad-'));
  dirs.push(dir);
  const s = new Spool({ dir });
  for (let i = 0; i < n; i++) s.append(rec(i));
  s.close();
  return { dir, seg: join(dir, readdirSync(dir).find((f) => f.endsWith('.seg')) as string) };
}

/** Opens the spool, takes everything (acknowledging), and says what came out and what was counted lost. */
function reopen(dir: string): { got: number[]; dropped: number; why: string[] } {
  const why: string[] = [];
  const s = new Spool({ dir, onDrop: (_n, w) => why.push(w) });
  const got: number[] = [];
  for (let batch = s.next(7); batch.length > 0; batch = s.next(7))
    for (const e of batch) {
      got.push((JSON.parse(e.payload.toString()) as { i: number }).i);
      s.ack(e.seq);
    }
  const dropped = s.stats().dropped;
  s.close();
  return { got, dropped, why };
}

function flip(path: string, at: number): void {
  const b = readFileSync(path);
  b[at] ^= 0x10;
  writeFileSync(path, b);
}

describe('a damaged spool', () => {
  it('a bit gone bad in one record: that record is counted lost, the others all come out', () => {
    for (const k of [0, 5, 9]) {
      const { dir, seg } = written(10);
      flip(seg, k * FRAME + HEADER + 3);
      const r = reopen(dir);
      expect(r.got, `frame ${k}`).toEqual([...Array(10).keys()].filter((i) => i !== k));
      expect(r.dropped, `frame ${k}`).toBe(1);
      expect(r.why[0]).toMatch(/do not match their checksum/);
      // Passed over for good: the next open neither hands it out nor counts it again.
      expect(reopen(dir)).toEqual({ got: [], dropped: 0, why: [] });
    }
  });

  it('a tail of zeros (a crash) or a length that cannot be: what comes before is read, the rest counted lost once', () => {
    const zeros = written(3);
    appendFileSync(zeros.seg, Buffer.alloc(64));
    const z = reopen(zeros.dir);
    expect(z.got).toEqual([0, 1, 2]);
    expect(z.dropped).toBe(1);
    expect(z.why).toEqual([expect.stringMatching(/unreadable from byte \d+; the records after it are lost/)]);

    const garbled = written(10);
    const b = readFileSync(garbled.seg);
    b.writeUInt32BE(0x7fffffff, 4 * FRAME); // frame 4's length
    writeFileSync(garbled.seg, b);
    const g = reopen(garbled.dir);
    expect(g.got).toEqual([0, 1, 2, 3]);
    expect(g.dropped).toBe(1);
    // At the very start: nothing is readable, and the segment's loss is still told (it was deleted unread).
    const first = written(10);
    const f = readFileSync(first.seg);
    f.writeUInt32BE(0, 0);
    writeFileSync(first.seg, f);
    expect(reopen(first.dir)).toMatchObject({ got: [], dropped: 1 });
  });

  it('a bad record is counted once, however often rewinds and restarts read it; an unreadable tail likewise', () => {
    const { dir, seg } = written(3);
    flip(seg, 1 * FRAME + HEADER + 3);
    const s = new Spool({ dir });
    for (let i = 0; i < 3; i++) {
      s.next(10); // read (the bad one passed over), never confirmed
      s.rewind();
    }
    for (const e of s.next(10)) s.ack(e.seq);
    expect(s.stats()).toMatchObject({ dropped: 1, delivered: 2, pending: 0 });
    s.close();
    // A zeroed tail behind an unconfirmed record, opened three times before it is delivered: one loss in all.
    const z = written(2);
    appendFileSync(z.seg, Buffer.alloc(64));
    for (let i = 0; i < 3; i++) {
      const t = new Spool({ dir: z.dir });
      expect(t.stats().dropped, `open ${i}`).toBe(0);
      t.close();
    }
    expect(reopen(z.dir)).toMatchObject({ got: [0, 1], dropped: 1 });
  });

  it('an empty entry is refused at append: a zero length marks damage, never a record', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-spool-bad-'));
    dirs.push(dir);
    const s = new Spool({ dir });
    expect([s.append(rec(0)), s.append(Buffer.alloc(0)), s.append(rec(2))]).toEqual([true, false, true]);
    s.close();
    expect(reopen(dir)).toEqual({ got: [0, 2], dropped: 0, why: [] });
  });

  it('a pump with valid() passes over an entry its sink cannot frame, counting it, and delivers the rest', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fg-spool-bad-'));
    dirs.push(dir);
    const s = new Spool({ dir });
    for (const p of [rec(0), Buffer.from([1]), rec(2)]) s.append(p);
    const sent: number[] = [];
    let rejected = 0;
    const pump = new SpoolPump(s, {
      window: 8,
      ready: () => true,
      valid: (b) => b.length > 1,
      onRejected: () => rejected++,
      send: (b, done) => {
        sent.push((JSON.parse(b.toString()) as { i: number }).i);
        done();
      },
    });
    pump.kick();
    expect([sent, rejected]).toEqual([[0, 2], 1]);
    expect(s.stats()).toMatchObject({ pending: 0, delivered: 2, dropped: 1 });
    pump.stop();
    s.close();
  });
});
