/**
 * Owner tags of flowgrab's firewall objects: a tag names its process by pid,
 * start time and PID namespace; a dead owner in this namespace marks a stale
 * object, an owner in another PID namespace is never judged from here.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  isSelf,
  ownerAlive,
  ownerTag,
  parseOwnerTag,
  processStart,
  selfOwner,
} from '../../../src/sources/firewall/owner.js';
import { waitFor } from '../../../src/testing/lab/index.js';

const ourPidns = Number(/\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1]);
/** A pid that has just exited. */
const deadPid = () => Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());

describe('owner tags', () => {
  it('say pid, start time and PID namespace, and read back', () => {
    const me = selfOwner();
    expect(me.pidns).toBe(ourPidns);
    expect(ownerTag()).toBe(`flowgrab pid=${process.pid} start=${processStart(process.pid)} pidns=${ourPidns}`);
    expect(parseOwnerTag(`comment "${ownerTag()}"`)).toEqual(me);
    expect(isSelf(parseOwnerTag(ownerTag())!)).toBe(true);
    // A tag written before the namespace was recorded reads as this namespace's.
    expect(parseOwnerTag('flowgrab pid=12 start=34')).toEqual({ pid: 12, start: 34 });
    expect(parseOwnerTag('nothing of ours')).toBeUndefined();
  });

  it('a dead owner here is stale; one in another PID namespace is never judged from here', () => {
    const dead = deadPid();
    expect(ownerAlive({ pid: dead, start: 1 })).toBe(false);
    expect(ownerAlive({ pid: dead, start: 1, pidns: ourPidns })).toBe(false);
    // Its pid means nothing here (a container sharing the network namespace): left alone.
    expect(ownerAlive({ pid: dead, start: 1, pidns: ourPidns + 1 })).toBe(true);
    expect(isSelf({ ...selfOwner(), pidns: ourPidns + 1 })).toBe(false);
    expect(ownerAlive(selfOwner())).toBe(true);
    expect(ownerAlive({ pid: process.pid, start: selfOwner().start + 1 })).toBe(false); // a recycled pid
  });

  it('a killed owner its parent has not reaped yet (a zombie) is dead: it holds nothing', async () => {
    // `sleep 0` ends at once; its parent becomes `sleep 30`, which never waits for it: a zombie while it runs.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      let out = '';
      parent.stdout.on('data', (d) => (out += d));
      await waitFor(() => /\d+\n/.test(out), { timeoutMs: 10_000, what: "the child's pid" });
      const pid = Number(out.trim());
      await waitFor(() => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z'), {
        timeoutMs: 10_000,
        what: 'the child to be a zombie',
      });
      const start = processStart(pid);
      expect(start).toBeGreaterThan(0); // still in /proc, with its start time
      expect(ownerAlive({ pid, start: start as number })).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
