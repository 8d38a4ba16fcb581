/** A client's requests in order, and none run once it has gone (a hang-up mid-request left orphaned flows). */
import { describe, expect, it } from 'vitest';
import { InOrder } from '../../../src/daemon/in-order.js';
import { waitFor } from '../../../src/testing/lab/index.js';

describe('InOrder', () => {
  it('runs jobs one at a time in order, and after each one', async () => {
    const q = new InOrder();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    q.push(
      async () => {
        log.push('1 start');
        await gate;
        log.push('1 end');
      },
      () => log.push('after 1'),
    );
    q.push(
      async () => {
        log.push('2');
      },
      () => log.push('after 2'),
    );
    // Job 1 has started and waits on its gate: job 2 must not have started meanwhile.
    await waitFor(() => log.length > 0, { what: 'job 1 to start', intervalMs: 1 });
    expect(log).toEqual(['1 start']);
    release();
    await new Promise<void>((r) => q.push(async () => {}, r));
    expect(log).toEqual(['1 start', '1 end', 'after 1', '2', 'after 2']);
  });

  it('drops the jobs not started when closed: the running one finishes, the rest never run, every after runs', async () => {
    const q = new InOrder();
    const ran: number[] = [];
    const afters: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    q.push(
      async () => {
        ran.push(1);
        await gate;
      },
      () => afters.push(1),
    );
    for (const n of [2, 3, 4])
      q.push(
        async () => void ran.push(n),
        () => afters.push(n),
      );
    await waitFor(() => ran.length > 0, { what: 'request 1 to start', intervalMs: 1 });
    q.close(); // the client hung up while request 1 waited on the kernel
    release();
    await new Promise<void>((r) => q.push(async () => void ran.push(5), r));
    expect(ran).toEqual([1]);
    expect(afters).toEqual([1, 2, 3, 4]);
  });

  it('goes on past a job that throws', async () => {
    const q = new InOrder();
    const ran: number[] = [];
    q.push(
      async () => {
        throw new Error('boom');
      },
      () => {},
    );
    await new Promise<void>((r) => q.push(async () => void ran.push(2), r));
    expect(ran).toEqual([2]);
  });
});
