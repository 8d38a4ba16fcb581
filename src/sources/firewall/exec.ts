/** Running nft / iptables, optionally inside a network namespace (`ip netns exec`). */
import { execFile } from 'node:child_process';
import { FlowgrabError } from '../../errors.js';

/** A firewall tool's exit code and output. */
export interface ToolResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a firewall tool (nft, iptables) with bounded output; plumbing, kept public for the SPIN example. */
export function runTool(
  argv: string[],
  opts: { netns?: string; input?: string; allowFail?: boolean } = {},
): Promise<ToolResult> {
  const full = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv;
  return new Promise((resolve, reject) => {
    const child = execFile(full[0], full.slice(1), { timeout: 15_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(
          new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `${full[0]} is not installed`, { op: argv[0], cause: err }),
        );
        return;
      }
      if (code !== 0 && !opts.allowFail) {
        const what = stderr.trim().split('\n').slice(-3).join(' | ');
        reject(
          new FlowgrabError(
            code === 1 && /Operation not permitted/.test(stderr) ? 'FG_ERR_PERMISSION' : 'FG_ERR_FIREWALL',
            `${argv.join(' ')}: ${what || `exit ${code}`}`,
            { op: argv[0], cause: err },
          ),
        );
        return;
      }
      resolve({ stdout, stderr, code });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
