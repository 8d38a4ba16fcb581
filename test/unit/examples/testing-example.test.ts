/**
 * Testing an analyzer without root, as a user of the package would (in a
 * project: `from 'flowgrab'` and `from 'flowgrab/testing'`). The README's
 * "Testing without root" points here.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, toArray, VirtualAction, VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConntrackRecord, conntrack, Flowgrab } from '../../../src/index.js';
import { dumpReply, FakeKernel, fakeFeed } from '../../../src/testing/index.js';
import { until } from '../../helpers/wait.js';

/** A conntrack-shaped record, as the kernel source would emit it. */
function flow(id: number, src: string): ConntrackRecord {
  return {
    type: 'new',
    id,
    family: 'ipv4',
    proto: 'tcp',
    protonum: 6,
    orig: { src, dst: '198.51.100.10', sport: 40000 + id, dport: 443 },
    reply: { src: '198.51.100.10', dst: src, sport: 443, dport: 40000 + id },
    status: ['CONFIRMED'],
    ts: 1_700_000_000_000 + id,
  };
}

let fg: Flowgrab | undefined;
afterEach(async () => {
  await fg?.close();
  fg = undefined;
});

describe('testing an analyzer without root', () => {
  it('fake(feed=…) and fakeFeed(): records pushed by the test run through a text graph', async () => {
    fg = new Flowgrab();
    const f = fg.create();
    f.populate('fake(feed=web) -> match(orig.dport == 443 && proto == tcp) -> project(orig.src)');
    await f.instantiate();
    await f.activate();
    const out = lastValueFrom(f.records$.pipe(toArray()));
    fakeFeed('web').next(flow(1, '10.1.0.1'));
    fakeFeed('web').next({ ...flow(2, '10.1.0.2'), proto: 'udp', protonum: 17 });
    fakeFeed('web').complete();
    expect((await out).map((r) => r.orig)).toEqual([{ src: '10.1.0.1' }]);
  });

  it('a virtual-time scheduler drives windows: Flowgrab({scheduler})', async () => {
    // rxjs's TestScheduler is a VirtualTimeScheduler too (its flush stops at 750 virtual ms unless maxFrames is raised).
    const time = new VirtualTimeScheduler(VirtualAction, 25_000);
    fg = new Flowgrab({ scheduler: time });
    const f = fg.create();
    f.populate('fake(feed=windows) -> count(by=orig.src, every=10s)');
    await f.instantiate();
    await f.activate();
    const seen: Record<string, unknown>[] = [];
    f.records$.subscribe((r) => seen.push(r));
    for (const [i, src] of ['10.1.0.1', '10.1.0.1', '10.1.0.2'].entries()) fakeFeed('windows').next(flow(i, src));
    time.flush(); // runs 25 s of timers at once: two window ends
    await until(() => seen.length === 2, 'both window counts'); // records reach records$ on a later turn
    const counts = seen.map((r) => [(r.orig as { src: string }).src, r.count]);
    expect(counts).toEqual([
      ['10.1.0.1', 2],
      ['10.1.0.2', 1],
    ]);
  });

  it('replay(file=…): a recording made by `flowgrab record` (or written by the test) feeds a graph', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'fg-example-')), 'flows.ndjson');
    const header = {
      flowgrab: 'recording',
      version: 1,
      host: 'test',
      started: 0,
      sources: [{ name: 'conntrack', params: {} }],
    };
    writeFileSync(file, [header, flow(1, '10.1.0.1'), flow(2, '10.1.0.2')].map((x) => JSON.stringify(x)).join('\n'));
    fg = new Flowgrab();
    const f = fg.create();
    f.populate(`replay(file="${file}") -> match(orig.src in 10.1.0.0/24) -> project(id)`);
    await f.instantiate();
    const out = lastValueFrom(f.records$.pipe(toArray()));
    await f.activate();
    expect((await out).map((r) => r.id)).toEqual([1, 2]);
  });

  it('FakeKernel: a kernel source talks to a scripted netlink peer instead of the kernel', async () => {
    const kernel = new FakeKernel();
    // Every request (here the conntrack dump) is answered with an empty table.
    kernel.handler = (req) => [dumpReply(req, 0x100, [])];
    const recs = await lastValueFrom(conntrack({ dump: true, transport: kernel.transport }).pipe(toArray()));
    expect(recs).toEqual([]);
    expect(kernel.requestCount).toBeGreaterThan(0);
    expect(kernel.openSockets).toHaveLength(0);
  });

  it('is what the README\'s "Testing without root" points to', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain('### Testing without root');
    expect(readme).toContain('test/unit/examples/testing-example.test.ts');
  });
});
