/**
 * The lab's command runner under a blocked main thread: spawning dozens of
 * commands at once (generateTraffic) keeps the event loop busy for seconds on
 * a loaded machine. A command that finished meanwhile is a success with its
 * output, not a timeout; one that really outlives its bound is killed.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../../../src/testing/lab/exec.js';

const dir = mkdtempSync(join(tmpdir(), 'fg-lab-exec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Blocks the thread (no event loop turn) until `fact` holds; throws after `boundMs`. */
function blockUntil(fact: () => boolean, boundMs: number, what: string): void {
  const end = Date.now() + boundMs;
  while (!fact()) if (Date.now() > end) throw new Error(`timed out after ${boundMs} ms waiting for ${what}`);
}

const read = (f: string): string | undefined => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return undefined;
  }
};

/** The state letter of /proc/PID/stat ('Z' once the process exited and waits to be reaped). */
const procState = (pid: number): string | undefined => read(`/proc/${pid}/stat`)?.replace(/^.*\) /s, '')[0];

describe('lab run()', () => {
  it('a command that exited while the main thread was blocked past its timeout keeps its output and exit code', async () => {
    const pidFile = join(dir, 'pid');
    const done = run(['sh', '-c', `echo $$ > ${pidFile}; echo hi`], { timeoutMs: 1, allowFail: true });
    // The main thread stays busy (as while spawning) until the command has exited, well past its 1 ms bound.
    blockUntil(() => (read(pidFile) ?? '').endsWith('\n'), 10_000, 'the command to start');
    const pid = Number(read(pidFile));
    blockUntil(() => procState(pid) === 'Z' || procState(pid) === undefined, 10_000, 'the command to exit');
    expect(await done).toEqual({ stdout: 'hi\n', stderr: '', code: 0 });
  });

  it('a command that outlives its bound is killed and reported as timed out', async () => {
    const r = await run(['sleep', '30'], { timeoutMs: 50, allowFail: true });
    expect(r.code).toBe(124);
    await expect(run(['sleep', '30'], { timeoutMs: 50 })).rejects.toThrow(/timed out/);
  });
});
