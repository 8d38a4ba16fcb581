/**
 * New MAC-less nodes ask the kernel's neighbour table for their MAC (spind's `ip neigh`). Questions asked
 * together share one read of the table, one read at a time: 200 addresses of one /64 started 200 processes.
 */
import { describe, expect, it } from 'vitest';
import { type NeighJson, neighbourAsker } from '../../../examples/spin/io/kernel-neigh.js';

const TABLE: NeighJson[] = [
  { dst: '192.168.1.10', lladdr: '02:00:00:00:00:0A', state: ['REACHABLE'] },
  { dst: '192.168.1.11', state: ['INCOMPLETE'] },
  { dst: '192.168.1.12', lladdr: '02:00:00:00:00:0c', state: ['FAILED'] },
  { dst: '2001:db8::1', lladdr: '02:00:00:00:00:01', state: ['STALE'] },
];

/** A table read the test releases; counts reads, and reads running at once. */
function reads() {
  let running = 0;
  const r = { count: 0, most: 0, release: () => {} };
  const read = () =>
    new Promise<NeighJson[]>((resolve) => {
      r.count++;
      r.most = Math.max(r.most, ++running);
      r.release = () => {
        running--;
        resolve(TABLE);
      };
    });
  return { r, read };
}

describe('neighbour table questions', () => {
  it('answer from one read: MAC, pending, or unknown; an address in any spelling', async () => {
    const { r, read } = reads();
    const ask = neighbourAsker(read);
    const answers = Promise.all(
      ['192.168.1.10', '192.168.1.11', '192.168.1.12', '192.168.1.99', '2001:DB8:0::1'].map(ask),
    );
    r.release(); // the first question's read
    await new Promise((s) => setImmediate(s));
    r.release(); // the rest, asked while it ran
    expect(await answers).toEqual(['02:00:00:00:00:0a', 'pending', undefined, undefined, '02:00:00:00:00:01']);
    expect(r.count).toBe(2);
  });

  it('200 questions at once: two reads, never two at a time', async () => {
    const { r, read } = reads();
    const ask = neighbourAsker(read);
    const all = Promise.all(Array.from({ length: 200 }, (_, i) => ask(`fd00::${i.toString(16)}`)));
    for (let i = 0; i < 2; i++) {
      r.release();
      await new Promise((s) => setImmediate(s));
    }
    expect((await all).every((a) => a === undefined)).toBe(true);
    expect(r.count).toBe(2);
    expect(r.most).toBe(1);
  });

  it('past 4096 addresses waiting, a question is answered "unknown" at once', async () => {
    const { r, read } = reads();
    const ask = neighbourAsker(read);
    const first = ask('192.168.1.10'); // its read is running: the next ones wait
    const waiting = Array.from({ length: 4096 }, (_, i) => ask(`fd00::1:${i.toString(16)}`));
    let answered = false;
    const over = ask('192.168.1.10').then((a) => {
      answered = true;
      return a;
    });
    await Promise.resolve();
    expect(answered).toBe(true);
    expect(await over).toBeUndefined();
    r.release();
    expect(await first).toBe('02:00:00:00:00:0a');
    await new Promise((s) => setImmediate(s));
    r.release();
    await Promise.all(waiting);
    expect(r.count).toBe(2);
  });
});
