/**
 * Owner tags of flowgrab's firewall objects: a tag names its process by pid,
 * start time and PID namespace; a dead owner in this namespace marks a stale
 * object, an owner in another PID namespace is never judged from here.
 */
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  isSelf,
  ownerAlive,
  ownerTag,
  parseOwnerTag,
  processStart,
  selfOwner,
} from '../../../src/sources/firewall/owner.js';

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
});
