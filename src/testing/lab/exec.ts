import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { FlowgrabError } from '../../errors.js';

/**
 * Runs a command for the lab. Always an argv through `execFile`, never a shell
 * string: lab commands carry addresses and names that must not be re-parsed.
 */
export interface RunOptions {
  /** Written to the command's stdin, which is then closed (stdin is always closed). */
  input?: string;
  /** Kill the command (SIGKILL) after this long; default 20 s. */
  timeoutMs?: number;
  /** Return a non-zero exit (or a timeout) as a result instead of throwing; a missing program still throws. */
  allowFail?: boolean;
}

/** A command's exit code and output. */
export interface RunResult {
  stdout: string;
  stderr: string;
  /** Exit code; 124 after a timeout (like coreutils `timeout`), 127 when the program is missing. */
  code: number;
}

/** How long `run()` lets a command take unless told otherwise. */
export const DEFAULT_TIMEOUT_MS = 20_000;

/** A lab command that failed: the argv, exit code and stderr ride along for the report. */
export class LabCommandError extends FlowgrabError {
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly stderr: string;

  constructor(argv: readonly string[], exitCode: number, stderr: string, timedOut: boolean, cause?: unknown) {
    const what = timedOut ? 'timed out' : `exited with code ${exitCode}`;
    const detail = stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : '';
    super(timedOut ? 'FG_ERR_TIMEOUT' : 'FG_ERR_NETNS', `\`${argv.join(' ')}\` ${what}${detail}`, {
      op: argv[0],
      cause,
    });
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

interface ExecFailure extends Error {
  code?: number | string | null;
  killed?: boolean;
  signal?: NodeJS.Signals | null;
}

/**
 * Runs a command (argv, no shell) with a timeout; throws on a non-zero exit unless `allowFail`.
 *
 * The timeout is ours, not execFile's: when it fires, the kill waits one turn of the event loop, so a
 * command that finished while the main thread was busy (spawning dozens of commands at once on a loaded
 * machine blocks it for seconds) is reaped and counted as finished, not killed and reported as timed out.
 */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new FlowgrabError('FG_ERR_INVALID_ARGUMENT', 'run: empty argv'));
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const child = execFile(
      file,
      args,
      {
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
        // Tools we parse (ip, ss, dig, conntrack) must not localise their output.
        env: { ...process.env, LC_ALL: 'C' },
      },
      (err, stdout, stderr) => {
        clearTimeout(timer);
        if (!err) {
          resolve({ stdout, stderr, code: 0 });
          return;
        }
        const e = err as ExecFailure;
        const code = typeof e.code === 'number' ? e.code : e.code === 'ENOENT' ? 127 : timedOut ? 124 : 1;
        const errText = stderr || (typeof e.code === 'string' ? e.message : '');
        if (opts.allowFail && e.code !== 'ENOENT') resolve({ stdout, stderr: errText, code });
        else reject(new LabCommandError(argv, code, errText, timedOut, err));
      },
    );
    const exited = () => child.exitCode !== null || child.signalCode !== null;
    const timer = setTimeout(() => {
      // Timers run before I/O in a loop turn: let the exit the kernel may already hold for us be read first.
      setImmediate(() => {
        if (exited()) return;
        timedOut = true;
        child.kill('SIGKILL');
      });
    }, timeoutMs);
    // A command that exits before reading its input closes the pipe: not our error.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

/** Programs among `names` found nowhere on PATH (plus the sbin directories a non-login root shell may lack). */
export function missingTools(names: readonly string[]): string[] {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'].filter(Boolean);
  const found = (name: string) =>
    dirs.some((dir) => {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
  return names.filter((n) => !found(n));
}

/** One error out of a teardown's collected failures, every message kept in the summary. */
export function teardownError(errors: unknown[], what: string): AggregateError {
  const summary = errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ');
  return new AggregateError(errors, `${what}: ${errors.length} cleanup step(s) failed: ${summary}`);
}
