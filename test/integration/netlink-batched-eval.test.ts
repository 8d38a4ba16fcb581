/**
 * The batched receive worker in a process started as `node --input-type=module -e …`
 * (a script given on the command line, as the export bench's source-only
 * floor runs). A worker inherits the parent's node flags, and under that one
 * its source text ran as a module, without `require`: the worker died at
 * once and the source delivered nothing. It must receive events there too.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Netns, waitFor } from '../../src/testing/lab/index.js';
import { conntrackNetns } from '../helpers/conntrack-cli.js';
import { DIST } from '../helpers/daemon.js';
import { fileLab } from '../helpers/lab.js';

let ns: Netns;
fileLab(async (lab) => {
  ns = await conntrackNetns(lab, 'bevl', { 'net.netfilter.nf_conntrack_events': 1 });
});

const SOURCE = join(DIST, 'src/sources/conntrack/source.js');
// One line per NEW event; errors and notices (a dead worker is reported as one) on stderr.
const SCRIPT = `
const { conntrack } = await import(${JSON.stringify(SOURCE)});
conntrack({ netns: process.argv[1], events: ['new'], notices: { next: (n) => console.error('notice', n.message) } })
  .subscribe({ next: (r) => console.log(r.type, r.orig.dport), error: (e) => console.error('error', e.message) });
`;

describe('batched receive under node --input-type=module -e', () => {
  it('delivers events', async () => {
    expect(existsSync(SOURCE), `${SOURCE} (run npx tsc -p tsconfig.json)`).toBe(true);
    const child = spawn(process.execPath, ['--input-type=module', '-e', SCRIPT, ns.name], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    try {
      // Datagrams to port 4242 until the child reports one's NEW event (it may still be starting).
      await waitFor(
        async () => {
          await ns.exec(['bash', '-c', 'echo x > /dev/udp/127.0.0.1/4242 || true'], { allowFail: true });
          return out.includes('new 4242') || child.exitCode !== null;
        },
        { timeoutMs: 20_000, intervalMs: 200, what: 'a NEW event in the child' },
      ).catch((e: Error) => {
        throw new Error(`${e.message}; the child's stderr: ${err}`);
      });
      expect(out).toContain('new 4242');
      expect(err).toBe('');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
