// The bridge's bounded serial publish queue: order, limits, no recursion
// when the broker calls back synchronously, and a connection that goes away
// with a publish in flight.
import { describe, expect, it } from 'vitest';
import { type QueuedPublish, SerialQueue } from '../../examples/spin/io/mqtt/serial-queue.js';

const msg = (i: number, payload = `m${i}`): QueuedPublish => ({ topic: 'SPIN/traffic', payload, retain: false });

describe('SerialQueue', () => {
  it('sends 200 000 publishes in order when the broker calls back at once, without growing the stack', () => {
    const sent: string[] = [];
    const q = new SerialQueue({ maxMessages: 10, maxBytes: 1 << 20 }, (item, done) => {
      sent.push(item.payload);
      done();
    });
    let taken = 0;
    for (let i = 0; i < 200_000; i++) if (q.push(msg(i))) taken++;
    expect(taken).toBe(200_000);
    expect(sent).toHaveLength(200_000);
    expect(sent[199_999]).toBe('m199999');
    expect(q.length).toBe(0);
  });

  it('keeps one publish in flight, queues the rest in order up to its limits, and drops beyond them', async () => {
    const sent: string[] = [];
    const pending: (() => void)[] = [];
    const q = new SerialQueue({ maxMessages: 3, maxBytes: 1 << 20 }, (item, done) => {
      sent.push(item.payload);
      pending.push(() => done());
    });
    const taken = Array.from({ length: 6 }, (_, i) => q.push(msg(i)));
    // One in flight plus three waiting; the fifth and sixth do not fit.
    expect(taken).toEqual([true, true, true, true, false, false]);
    expect(sent).toEqual(['m0']);
    while (pending.length) {
      pending.shift()?.();
      await Promise.resolve();
    }
    expect(sent).toEqual(['m0', 'm1', 'm2', 'm3']);

    const bytes = new SerialQueue({ maxMessages: 100, maxBytes: 100 }, (_item, _done) => {});
    expect(bytes.push(msg(0, 'x'.repeat(10)))).toBe(true); // in flight, not counted as waiting
    expect(bytes.push(msg(1, 'x'.repeat(60)))).toBe(true);
    expect(bytes.push(msg(2, 'x'.repeat(60)))).toBe(false);
    expect(bytes.queuedBytes).toBe(60 + 'SPIN/traffic'.length);
  });

  it('clear() counts what was waiting and in flight as lost, and a late callback changes nothing', () => {
    const sent: string[] = [];
    const callbacks: ((e?: Error) => void)[] = [];
    const q = new SerialQueue({ maxMessages: 10, maxBytes: 1 << 20 }, (item, done) => {
      sent.push(item.payload);
      callbacks.push(done);
    });
    for (let i = 0; i < 4; i++) q.push(msg(i));
    q.clear();
    expect(q.lost).toBe(4);
    callbacks[0](); // the old connection's drain, much later
    expect(sent).toEqual(['m0']);
    q.push(msg(9));
    expect(sent).toEqual(['m0', 'm9']);
    callbacks[1](new Error('No connection to broker'));
    expect(q.lost).toBe(5);
    q.stop();
    expect(q.push(msg(10))).toBe(false);
  });
});
