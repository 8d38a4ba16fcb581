import { Subject } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ANY_FIELDS } from '../../../src/filters/fields.js';
import { type Rec, registerSource } from '../../../src/filters/registry.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import { ct } from '../../helpers/records.js';
import { until } from '../../helpers/wait.js';

/** One gate per feed name: the `gated` source is capturing once its gate opens (or never, when it fails). */
const gates = new Map<string, { records: Subject<Rec>; open(): void; fail(err: Error): void }>();
function gate(name: string) {
  let open!: () => void;
  let fail!: (err: Error) => void;
  const capturing = new Promise<void>((res, rej) => {
    open = res;
    fail = rej;
  });
  const g = { records: new Subject<Rec>(), capturing, open, fail };
  gates.set(name, g);
  return g;
}

registerSource({
  name: 'gated',
  description: 'a test source that captures once its gate opens: gated(feed=NAME)',
  params: z.object({ feed: z.string() }).strict(),
  fields: ANY_FIELDS,
  create: (p, ctx) => {
    const g = gates.get(p.feed) as ReturnType<typeof gate>;
    ctx.ready?.(g.capturing);
    return g.records;
  },
});

async function instantiated(fg: Flowgrab, graph: string, opts = {}) {
  const f = fg.create(opts);
  f.populate(graph);
  await f.instantiate();
  return f;
}

const fg = new Flowgrab();
afterEach(() => fg.close());

describe('activate waits for the sources to capture', () => {
  it('resolves only once every source is capturing, and then delivers', async () => {
    const a = gate('ready-a');
    const b = gate('ready-b');
    const f = await instantiated(fg, 'gated(feed=ready-a) | gated(feed=ready-b)');
    let active = false;
    const activating = f.activate().then(() => (active = true));
    a.open();
    // Not a wait for time: a's readiness settles in microtasks, all of which run before the next macrotask.
    await a.capturing;
    await new Promise<void>((r) => setImmediate(r));
    expect(active).toBe(false);
    expect(f.state).toBe('instantiated');
    b.open();
    await activating;
    expect(f.state).toBe('active');
    const got: number[] = [];
    f.records$.subscribe((r) => got.push(r.id as number));
    a.records.next(ct(1));
    await until(() => got.length === 1, 'the record after activate');
    expect(got).toEqual([1]);
  });

  it('rejects with the source’s own error and leaves the flow instantiated', async () => {
    const g = gate('ready-fail');
    const f = await instantiated(fg, 'gated(feed=ready-fail)');
    const activating = f.activate();
    g.fail(Object.assign(new Error('NFLOG group 9 is already bound'), { code: 'FG_ERR_BUSY' }));
    await expect(activating).rejects.toMatchObject({ code: 'FG_ERR_BUSY', message: 'NFLOG group 9 is already bound' });
    expect(f.state).toBe('instantiated');
  });

  it('rejects when the source errors before it captures', async () => {
    const g = gate('ready-error');
    const f = await instantiated(fg, 'gated(feed=ready-error) -> match(id > 0)');
    const activating = f.activate();
    g.records.error(new Error('event socket closed'));
    await expect(activating).rejects.toThrow('event socket closed');
  });

  it('gives up after readyTimeoutMs with FG_ERR_TIMEOUT naming the flow and the source', async () => {
    gate('ready-never');
    const f = await instantiated(fg, 'gated(feed=ready-never)', { name: 'slowpoke', readyTimeoutMs: 50 });
    await expect(f.activate()).rejects.toMatchObject({
      code: 'FG_ERR_TIMEOUT',
      message: expect.stringMatching(
        /^flow slowpoke: not capturing after 50 ms \(waiting for gated\{"feed":"ready-never"\}\)/,
      ),
    });
    expect(f.state).toBe('instantiated');
  });

  it('a shared source that already captures does not hold a second flow up; pause → activate is immediate', async () => {
    const g = gate('ready-shared');
    g.open();
    const f1 = await instantiated(fg, 'gated(feed=ready-shared)');
    await f1.activate();
    const f2 = await instantiated(fg, 'gated(feed=ready-shared) -> match(id > 0)', { readyTimeoutMs: 50 });
    await f2.activate();
    await f1.pause();
    await f1.activate();
    expect([f1.state, f2.state]).toEqual(['active', 'active']);
  });
});
