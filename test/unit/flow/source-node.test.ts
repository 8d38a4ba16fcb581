import { config, Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Rec } from '../../../src/filters/registry.js';
import { type NodeStats, type Sink, SourceNode } from '../../../src/flow/network.js';
import { waitFor } from '../../../src/testing/lab/index.js';

const stats = (): NodeStats => ({ node: 'src', path: 'root', in: 0, out: 0, dropped: 0 });

/** A child that records what reaches it, and throws on the records `throwOn` picks. */
function child(throwOn: (r: Rec) => boolean = () => false) {
  const got: unknown[] = [];
  const ends: string[] = [];
  const sink: Sink = {
    push: (r) => {
      got.push(r.n);
      if (throwOn(r)) throw new Error(`child fails on ${String(r.n)}`);
    },
    complete: () => ends.push('complete'),
    error: (e) => ends.push(`error: ${(e as Error).message}`),
  };
  return { sink, got, ends };
}

describe('SourceNode (a source subscribed while it has children)', () => {
  afterEach(() => {
    config.onUnhandledError = null;
  });

  it('a child that throws is reported as RxJS reports it, and the source goes on', async () => {
    const reported: unknown[] = [];
    config.onUnhandledError = (e) => reported.push(e);
    let sent = 0;
    const node = new SourceNode(
      stats(),
      () =>
        new Observable<Rec>((sub) => {
          for (let n = 1; n <= 3; n++) {
            sub.next({ n });
            sent++;
          }
          sub.complete();
        }),
    );
    const c = child((r) => r.n === 2);
    node.attach(c.sink);
    expect(sent).toBe(3);
    expect(c.got).toEqual([1, 2, 3]);
    expect(c.ends).toEqual(['complete']);
    expect(node.stats.out).toBe(3);
    await waitFor(() => reported.length > 0, { timeoutMs: 5000, what: 'the error reported' });
    expect(reported.map((e) => (e as Error).message)).toEqual(['child fails on 2']);
  });

  it("a source's error reaches the children and its readiness; nothing after it is delivered", async () => {
    const node = new SourceNode(
      stats(),
      () =>
        new Observable<Rec>((sub) => {
          sub.next({ n: 1 });
          sub.error(new Error('socket gone'));
          sub.next({ n: 2 });
        }),
    );
    const c = child();
    node.attach(c.sink);
    const ready = node.readiness.wait(); // the readiness of this subscription (attach starts it)
    expect(c.got).toEqual([1]);
    expect(c.ends).toEqual(['error: socket gone']);
    await expect(ready).rejects.toThrow('socket gone');
  });

  it('unsubscribes from the source when the last child leaves', () => {
    let active = 0;
    const node = new SourceNode(
      stats(),
      () =>
        new Observable<Rec>(() => {
          active++;
          return () => active--;
        }),
    );
    const a = node.attach(child().sink);
    const b = node.attach(child().sink);
    expect(active).toBe(1);
    a();
    expect(active).toBe(1);
    b();
    expect(active).toBe(0);
  });
});
