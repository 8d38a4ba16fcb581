import {
  appendFileSync,
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FlowgrabError } from '../../../src/errors.js';
import { Spool } from '../../../src/export/spool/index.js';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fg-spool-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const rec = (i: number) => Buffer.from(JSON.stringify({ i, pad: 'x'.repeat(40) }));
const idx = (b: Buffer) => (JSON.parse(b.toString()) as { i: number }).i;

function drainAll(s: Spool, ack = true): number[] {
  const got: number[] = [];
  for (let guard = 0; guard < 100_000; guard++) {
    const batch = s.next(97);
    if (batch.length === 0) break;
    for (const e of batch) {
      got.push(idx(e.payload));
      if (ack) s.ack(e.seq);
    }
  }
  return got;
}

describe('Spool', () => {
  it('refuses a directory others may write, read or swap, and never writes through a planted symlink', () => {
    const open = tmp();
    chmodSync(open, 0o777);
    expect(() => new Spool({ dir: open })).toThrow(/spool .*: others may write in it \(mode 0777\)/);
    chmodSync(open, 0o755);
    expect(() => new Spool({ dir: open })).toThrow(/others may read it \(mode 0755; make it 0700\)/);
    const link = join(tmp(), 'link');
    symlinkSync(tmp(), link);
    expect(() => new Spool({ dir: link })).toThrow(/not a directory \(a symlink\?\)/);
    // In its own directory: a segment linked to a device is not read (it looped on /dev/zero), and a symlink
    // where the next segment goes is not written through.
    const dir = tmp();
    symlinkSync('/dev/zero', join(dir, '000000000001.seg'));
    const s = new Spool({ dir, maxBytes: 1024 * 1024, segmentBytes: 4096 });
    expect(s.stats().pending).toBe(0);
    const victim = join(tmp(), 'victim');
    writeFileSync(victim, 'untouched\n');
    symlinkSync(victim, join(dir, '000000000003.seg'));
    expect(() => {
      for (let i = 0; i < 200; i++) s.append(rec(i));
    }).toThrow(/EEXIST/);
    expect(readFileSync(victim, 'utf8')).toBe('untouched\n');
    // The segment that could not be made is not listed, and no closed descriptor is synced or written later.
    s.close();
  });

  it('removes what earlier runs delivered, run after run: segments do not pile up, nothing pending is lost', () => {
    const dir = tmp();
    const segs = () => readdirSync(dir).filter((f) => f.endsWith('.seg')).length;
    let next = 0;
    for (let run = 0; run < 5; run++) {
      const s = new Spool({ dir, maxBytes: 1024 * 1024, segmentBytes: 4096 });
      expect(s.stats().pending, `run ${run}`).toBe(0);
      for (let i = 0; i < 300; i++) s.append(rec(next++));
      expect(drainAll(s)).toHaveLength(300);
      s.close();
      // Everything delivered: at most the segment this run was writing stays (an exporter's clean runs left one
      // more each time, all read again at every start).
      expect(segs(), `run ${run}`).toBeLessThanOrEqual(1);
    }
    // Undelivered records survive the clean-up.
    const s = new Spool({ dir, maxBytes: 1024 * 1024, segmentBytes: 4096 });
    for (let i = 0; i < 50; i++) s.append(rec(next++));
    s.close();
    const t = new Spool({ dir, maxBytes: 1024 * 1024, segmentBytes: 4096 });
    expect(t.stats().pending).toBe(50);
    expect(drainAll(t)).toEqual(Array.from({ length: 50 }, (_, k) => next - 50 + k));
    t.close();
  });

  it('hands records out in order across segments and removes delivered segments', () => {
    const dir = tmp();
    const s = new Spool({ dir, maxBytes: 1024 * 1024, segmentBytes: 4096 });
    for (let i = 0; i < 1000; i++) expect(s.append(rec(i))).toBe(true);
    expect(s.stats().segments).toBeGreaterThan(5);
    expect(drainAll(s)).toEqual([...Array(1000).keys()]);
    const st = s.stats();
    expect(st).toMatchObject({ appended: 1000, delivered: 1000, dropped: 0, pending: 0 });
    expect(st.segments).toBeLessThanOrEqual(1);
    s.close();
  });

  it('keeps undelivered records for the next open, from the delivered position', () => {
    const dir = tmp();
    const a = new Spool({ dir, segmentBytes: 4096 });
    for (let i = 0; i < 500; i++) a.append(rec(i));
    const first = a.next(120);
    for (const e of first) a.ack(e.seq);
    a.next(50); // handed out, never confirmed: must come again
    a.close();
    const b = new Spool({ dir, segmentBytes: 4096 });
    expect(b.stats().recovered).toBe(380);
    expect(drainAll(b)).toEqual([...Array(380).keys()].map((i) => i + 120));
    b.close();
  });

  it('moves the delivered position only over a confirmed prefix (acks out of order)', () => {
    const s = new Spool({ dir: tmp() });
    for (let i = 0; i < 10; i++) s.append(rec(i));
    const e = s.next(10);
    s.ack(e[2].seq);
    s.ack(e[1].seq);
    expect(s.stats().delivered).toBe(0);
    s.ack(e[0].seq);
    expect(s.stats().delivered).toBe(3);
    s.rewind();
    expect(s.next(100).map((x) => idx(x.payload))).toEqual([3, 4, 5, 6, 7, 8, 9]);
    s.close();
  });

  it('drops the oldest records past the size limit and counts every one', () => {
    const drops: number[] = [];
    const s = new Spool({ dir: tmp(), maxBytes: 64 * 1024, segmentBytes: 8192, onDrop: (n) => drops.push(n) });
    const n = 5000; // ~ 300 KB: most of it cannot stay
    for (let i = 0; i < n; i++) s.append(rec(i));
    const st = s.stats();
    expect(st.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(st.dropped).toBeGreaterThan(0);
    expect(drops.reduce((a, b) => a + b, 0)).toBe(st.dropped);
    const got = drainAll(s);
    // What is left is the newest records, contiguous, and together with the drops accounts for all.
    expect(got.length + st.dropped).toBe(n);
    expect(got).toEqual([...Array(got.length).keys()].map((i) => i + st.dropped));
    s.close();
  });

  it('counts in records when an entry holds several (weigh), across drops and reopen', () => {
    const dir = tmp();
    const weigh = (b: Buffer) => b[0];
    const drops: number[] = [];
    const a = new Spool({ dir, maxBytes: 64 * 1024, segmentBytes: 8192, weigh, onDrop: (n) => drops.push(n) });
    const entry = (k: number) => Buffer.concat([Buffer.from([k]), Buffer.alloc(200)]);
    let total = 0;
    for (let i = 0; i < 1000; i++) {
      a.append(entry((i % 5) + 1));
      total += (i % 5) + 1;
    }
    const st = a.stats();
    expect(st.appended).toBe(total);
    expect(st.dropped).toBe(drops.reduce((x, y) => x + y, 0));
    expect(st.dropped).toBeGreaterThan(0);
    expect(st.pending + st.dropped).toBe(total);
    const e = a.next(3);
    for (const x of e) a.ack(x.seq);
    const acked = e.reduce((n, x) => n + x.payload[0], 0);
    a.close();
    const b = new Spool({ dir, maxBytes: 64 * 1024, segmentBytes: 8192, weigh });
    expect(b.stats().recovered).toBe(total - st.dropped - acked);
    b.close();
  });

  it('survives a torn frame at the end of a segment and garbage lengths without allocating them', () => {
    const dir = tmp();
    const a = new Spool({ dir });
    for (let i = 0; i < 20; i++) a.append(rec(i));
    a.close();
    const seg = readdirSync(dir).find((f) => f.endsWith('.seg')) as string;
    // A header promising 4 GiB, as a crash or an attacker could leave.
    appendFileSync(join(dir, seg), Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 2, 3]));
    const b = new Spool({ dir });
    expect(b.stats().recovered).toBe(20);
    for (let i = 20; i < 25; i++) b.append(rec(i));
    expect(drainAll(b)).toEqual([...Array(25).keys()]);
    b.close();
  });

  it('ignores a cursor that points nowhere and starts from the oldest record', () => {
    const dir = tmp();
    const a = new Spool({ dir });
    for (let i = 0; i < 5; i++) a.append(rec(i));
    a.close();
    writeFileSync(join(dir, 'cursor'), JSON.stringify({ seg: 1, off: 1e12 }));
    const b = new Spool({ dir });
    expect(drainAll(b)).toEqual([0, 1, 2, 3, 4]);
    b.close();
    writeFileSync(join(dir, 'cursor'), '{not json');
    const c = new Spool({ dir });
    expect(c.stats().pending).toBe(0);
    c.close();
  });

  it('refuses a second user of the directory, records over the entry limit and bad bounds', () => {
    const dir = tmp();
    const a = new Spool({ dir, maxEntryBytes: 100 });
    expect(() => new Spool({ dir })).toThrow(FlowgrabError);
    expect(a.append(Buffer.alloc(101))).toBe(false);
    expect(a.append(Buffer.alloc(100))).toBe(true);
    a.close();
    new Spool({ dir }).close(); // released on close
    expect(() => new Spool({ dir: tmp(), maxBytes: 10 })).toThrow(/maxBytes/);
    expect(() => new Spool({ dir: tmp(), maxBytes: 1e6, segmentBytes: 2e6 })).toThrow(/segmentBytes/);
    expect(() => new Spool({ dir: tmp(), syncMs: -1 })).toThrow(/syncMs/);
  });

  it('takes over the lock of a process that is gone', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'lock'), '2147483646');
    const s = new Spool({ dir });
    s.append(rec(1));
    s.close();
  });
});
