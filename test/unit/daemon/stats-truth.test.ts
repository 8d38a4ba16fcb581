/**
 * One truth for loss: the count lost$ reports for a flow's reader is the
 * count stats() shows as dropped, whichever way the reader lost records
 * (the flow's buffer, or an async iterator that fell behind). The remote
 * half is in test/integration/daemon-stats.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import type { LossNotice } from '../../../src/flow/handle.js';
import { fakeFeed } from '../../../src/testing/fake-source.js';
import { waitFor } from '../../../src/testing/lab/index.js';
import { ct } from '../../helpers/records.js';

const readerLoss = (lost: LossNotice[]) =>
  lost.filter((n) => n.where === 'reader').reduce((a, n) => a + (n.count ?? 0), 0);

describe('stats() and lost$ agree on what a local reader lost', () => {
  it('buffer drops: every record is delivered or dropped, and both counts match lost$', async () => {
    const fg = new Flowgrab();
    const f = fg.create({ name: 'small', bufferRecords: 4 });
    f.populate('fake(feed=truth-buffer)');
    await f.instantiate();
    let got = 0;
    f.records$.subscribe(() => got++);
    const lost: LossNotice[] = [];
    f.lost$.subscribe((n) => lost.push(n));
    await f.activate();
    for (let i = 0; i < 300; i++) fakeFeed('truth-buffer').next(ct(i));
    await waitFor(() => got + readerLoss(lost) === 300, { what: 'every record delivered or reported lost' });
    const s = f.stats();
    expect({ delivered: s.buffer.delivered, dropped: s.buffer.dropped }).toEqual({ delivered: got, dropped: 296 });
    expect(readerLoss(lost)).toBe(s.buffer.dropped);
    await fg.close();
  });

  it('iterator drops count too: a dawdling async reader loses records, and stats() says how many lost$ did', async () => {
    const fg = new Flowgrab();
    const f = fg.create({ name: 'iter', bufferRecords: 8 });
    f.populate('fake(feed=truth-iter)');
    await f.instantiate();
    await f.activate();
    const lost: LossNotice[] = [];
    f.lost$.subscribe((n) => lost.push(n));
    const it = f[Symbol.asyncIterator]();
    const first = it.next(); // asks for one, then reads no more
    // In batches the buffer can take, so the drops happen in the iterator's own queue, not the buffer.
    for (let b = 0; b < 10; b++) {
      for (let i = 0; i < 8; i++) fakeFeed('truth-iter').next(ct(b * 8 + i));
      const delivered = (b + 1) * 8;
      await waitFor(() => f.stats().buffer.delivered === delivered, { what: `batch ${b} delivered` });
    }
    await first;
    const dropped = f.stats().buffer.dropped;
    expect(dropped).toBeGreaterThan(0);
    await f.close(); // flushes the pending loss notice
    expect(readerLoss(lost)).toBe(dropped);
    await fg.close();
  });
});
