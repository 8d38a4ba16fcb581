import { config, Observable, type Subscriber } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { Rec } from '../../../src/filters/registry.js';
import { INLINE_KIDS, type NodeStats, type Sink, SourceNode } from '../../../src/flow/network.js';
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

  it('delivers each record to every child, inline or (past INLINE_KIDS) in a loop, and to those left after one leaves', () => {
    // n children after the first leaves (a node with none left unsubscribes).
    for (const n of [1, 2, INLINE_KIDS, INLINE_KIDS + 1, 40]) {
      let sub: Subscriber<Rec> | undefined;
      const node = new SourceNode(stats(), () => new Observable<Rec>((s) => void (sub = s)));
      const kids = Array.from({ length: n + 1 }, () => child());
      const detach = kids.map((k) => node.attach(k.sink));
      sub?.next({ n: 1 });
      detach[0]();
      sub?.next({ n: 2 });
      expect(kids[0].got).toEqual([1]);
      for (const k of kids.slice(1)) expect(k.got).toEqual([1, 2]);
      expect(node.stats.out).toBe(2);
    }
  });

  it("calls a child's run as it is at each record (a fused node replaces it as its steps change)", () => {
    let sub: Subscriber<Rec> | undefined;
    const node = new SourceNode(stats(), () => new Observable<Rec>((s) => void (sub = s)));
    const got: string[] = [];
    const fused = {
      ...child().sink,
      push(r: Rec) {
        this.run(r);
      },
      run: (r: Rec) => void got.push(`a${String(r.n)}`),
    };
    node.attach(fused);
    sub?.next({ n: 1 });
    fused.run = (r) => void got.push(`b${String(r.n)}`);
    sub?.next({ n: 2 });
    expect(got).toEqual(['a1', 'b2']);
  });
});
