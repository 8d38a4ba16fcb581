import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlowBuffer, type OverflowPolicy } from '../../../src/flow/buffer.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

type Op = { push: number } | { turn: true } | { settle: true } | { now: true } | { release: true };

/** What the buffer should have done: the records kept, in order, under the capacity and policy. */
class Model {
  kept: number[] = [];
  delivered: number[] = [];
  dropped = 0;
  held = false;
  constructor(
    readonly capacity: number,
    readonly policy: OverflowPolicy,
  ) {}
  push(r: number): void {
    if (this.kept.length >= this.capacity) {
      this.dropped++;
      if (this.policy === 'drop-newest') return;
      this.kept.shift();
    }
    this.kept.push(r);
  }
  deliverAll(): void {
    if (this.held) return;
    this.delivered.push(...this.kept);
    this.kept = [];
  }
}

describe('FlowBuffer', () => {
  it('delivers in order what its capacity and policy keep, through growth, wrap-around, a hold and drops', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5000 }),
        fc.constantFrom<OverflowPolicy>('drop-oldest', 'drop-newest'),
        // A flow's buffer holds from its start until activate (its only use of hold()).
        fc.boolean(),
        fc.array(
          fc.oneof(
            fc.record({ push: fc.integer({ min: 1, max: 3000 }) }),
            fc.constant({ turn: true as const }),
            fc.constant({ settle: true as const }),
            fc.constant({ now: true as const }),
            fc.constant({ release: true as const }),
          ),
          { maxLength: 16 },
        ),
        async (capacity, policy, startHeld, ops: Op[]) => {
          let drops = 0;
          const b = new FlowBuffer<number>(capacity, policy, (n) => (drops += n));
          if (startHeld) b.hold();
          const got: number[] = [];
          const sub = b.records$.subscribe((r) => got.push(r));
          const m = new Model(capacity, policy);
          m.held = startHeld;
          let next = 0;
          for (const op of ops) {
            if ('push' in op)
              for (let i = 0; i < op.push; i++) {
                b.push(next);
                m.push(next++);
              }
            else if ('release' in op) {
              b.release();
              m.held = false;
            } else if ('now' in op) {
              b.deliverNow();
              m.deliverAll();
            } else if ('turn' in op) {
              // One turn of the event loop: some of the oldest records (or none) go out, in order.
              await turn();
              const k = got.length - m.delivered.length;
              expect(k).toBeGreaterThanOrEqual(0);
              expect(k).toBeLessThanOrEqual(m.held ? 0 : m.kept.length);
              expect(got.slice(m.delivered.length)).toEqual(m.kept.slice(0, k));
              m.delivered.push(...m.kept.splice(0, k));
            } else {
              // Let the scheduled drains run (bounded: at most 1024 records a turn).
              for (let i = 0; i < 20 && !m.held && b.stats.buffered > 0; i++) await turn();
              m.deliverAll();
            }
            if (!('push' in op)) expect(got).toEqual(m.delivered);
            expect(b.stats.buffered).toBe(m.kept.length);
          }
          b.release();
          m.held = false;
          b.deliverNow();
          m.deliverAll();
          expect(got).toEqual(m.delivered);
          expect(b.stats.dropped).toBe(m.dropped);
          expect(drops).toBe(m.dropped);
          expect(b.stats.delivered).toBe(m.delivered.length);
          sub.unsubscribe();
        },
      ),
      { numRuns: 150 },
    );
  });

  it('hands each drain at most 1024 records, later ones on later turns, and lets a burst-grown ring go', async () => {
    const b = new FlowBuffer<number>(100_000, 'drop-oldest', () => {});
    const got: number[] = [];
    b.records$.subscribe((r) => got.push(r));
    for (let i = 0; i < 5000; i++) b.push(i);
    expect(b.stats.highWater).toBe(5000);
    await turn();
    expect(got.length).toBe(1024);
    for (let i = 0; i < 20 && got.length < 5000; i++) await turn();
    expect(got).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect((b as unknown as { ring: unknown[] }).ring.length).toBeLessThanOrEqual(4096);
    // And works on from the small ring.
    for (let i = 0; i < 40; i++) b.push(5000 + i);
    b.deliverNow();
    expect(got.slice(5000)).toEqual(Array.from({ length: 40 }, (_, i) => 5000 + i));
  });

  it('completes after what it holds, and a late subscriber gets the end', async () => {
    const b = new FlowBuffer<number>(10, 'drop-oldest', () => {});
    const got: (number | 'end')[] = [];
    b.records$.subscribe({ next: (r) => got.push(r), complete: () => got.push('end') });
    b.push(1);
    b.push(2);
    b.end();
    expect(got).toEqual([1, 2, 'end']);
    let late = false;
    b.records$.subscribe({ complete: () => (late = true) });
    expect(late).toBe(true);
  });
});
