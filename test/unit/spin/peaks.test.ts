import { describe, expect, it } from 'vitest';
import { PeakTable, peakCommand } from '../../../examples/spin/domain/peaks.js';

const flow = (from: number, to: number, size: number, count: number) => ({
  from,
  to,
  protocol: 6,
  from_port: 1,
  to_port: 2,
  size,
  count,
});

describe('PeakTable', () => {
  it('sums per minute for both ends, keys minutes ago as 0, -1, …; forgets beyond an hour', () => {
    let now = 10 * 60_000;
    const t = new PeakTable(() => now);
    t.add([flow(1, 2, 100, 1), flow(1, 3, 50, 2)]);
    now += 60_000;
    t.add([flow(1, 2, 10, 1)]);
    expect(t.info(1)).toEqual({
      command: 'peakinfo',
      argument: '1',
      result: {
        items: { '0': { bytes: 10, packets: 1 }, '-1': { bytes: 150, packets: 3 } },
        maxbytes: 150,
        maxpackets: 3,
        enforcing: false,
      },
    });
    expect(t.info(9)).toEqual({ command: 'peakinfo', argument: '9' });
    now += 60 * 60_000;
    t.expire();
    expect(t.size).toBe(0);
  });

  it('answers only well-formed get_peak_info commands', () => {
    const t = new PeakTable();
    t.add([flow(4, 5, 7, 1)]);
    const reply = peakCommand(Buffer.from('{"command":"get_peak_info","argument":4}'), t);
    expect(reply?.topic).toBe('SPIN/traffic');
    expect(JSON.parse(reply?.payload ?? '{}').result.maxbytes).toBe(7);
    for (const bad of [
      '{',
      '{"command":"add_block_node","argument":4}',
      '{"command":"get_peak_info","argument":-1}',
      'x'.repeat(5000),
    ])
      expect(peakCommand(Buffer.from(bad), t)).toBeUndefined();
  });
});
