/**
 * IPFIX over TCP when the collector resets a connection with messages it
 * never acknowledged: our kernel had taken them, so they used to count as
 * sent (and a spool had let them go) although they were lost. Exporter and
 * collector run in a namespace of the test's own (fixtures/export/
 * ipfix-tcp.mjs); an nft rule there drops what the exporter sends, so what
 * it writes meanwhile stays unacknowledged; then the collector resets.
 * With a spool every record reaches the collector on the next connection;
 * without one, the lost records are counted as dropped, not sent.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Netns, waitFor } from '../../src/testing/lab/index.js';
import { DIST } from '../helpers/daemon.js';
import { fileLab } from '../helpers/lab.js';
import { udpFlow } from '../helpers/records.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/export/ipfix-tcp.mjs');
const PORT = 4739;
let ns: Netns;
const dir = mkdtempSync(join(tmpdir(), 'fg-tcp-reset-'));
fileLab(async (lab) => {
  ns = await lab.netns('tcpreset');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Said {
  ev: string;
  records: number;
  distinct: number;
  conns?: number;
  stats: { sent: number; dropped: number; queued: number };
}

/** The fixture in the namespace, with `spool` a directory or "memory". */
function start(spool: string) {
  const child: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', ns.name, process.execPath, FIXTURE, DIST, spool, String(PORT), JSON.stringify(udpFlow(0))],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const said: Said[] = [];
  let partial = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    for (const p of parts) if (p) said.push(JSON.parse(p) as Said);
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  /** Sends `cmd` and resolves with the answer to it. */
  const ask = async (cmd: string): Promise<Said> => {
    const n = said.length;
    child.stdin!.write(`${cmd}\n`);
    await waitFor(() => said.length > n, { timeoutMs: 30_000, what: () => `an answer to ${cmd} (stderr: ${err})` });
    return said[n];
  };
  return {
    ready: () => waitFor(() => said.some((s) => s.ev === 'ready'), { timeoutMs: 30_000, what: () => `ready (${err})` }),
    ask,
    /** Waits until `fact` holds of a fresh count. */
    until: (fact: (s: Said) => boolean, what: string) =>
      waitFor(async () => fact(await ask('count')), { timeoutMs: 30_000, intervalMs: 100, what }),
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Bytes the exporter's socket holds unacknowledged (ss's Send-Q of its connection to the collector). */
async function sendQueue(port = PORT): Promise<number> {
  const out = (await ns.exec(['ss', '-tnH', 'state', 'established', `( dport = :${port} )`])).stdout.trim();
  return out ? Number(out.split(/\s+/)[1]) : 0;
}

/** Until `undo` runs, the namespace drops every packet to the collector's port (the exporter's data). */
async function dropToCollector(): Promise<() => Promise<void>> {
  await ns.exec(['nft', '-f', '-'], {
    input: `table inet blackhole {\n chain o { type filter hook output priority 0; tcp dport ${PORT} drop; }\n}\n`,
  });
  return async () => {
    await ns.exec(['nft', 'delete', 'table', 'inet', 'blackhole']);
  };
}

/** 100 records delivered, 200 written into the blackhole, then the collector resets the connection. */
async function resetWithUnacked(p: ReturnType<typeof start>): Promise<void> {
  await p.ready();
  await p.ask('write 0 100');
  await p.until((s) => s.records === 100, 'the first 100 records at the collector');
  const undo = await dropToCollector();
  try {
    await p.ask('write 100 300');
    await waitFor(async () => (await sendQueue()) > 10_000, { timeoutMs: 30_000, what: 'unacknowledged bytes' });
    await p.ask('reset');
    await p.until((s) => s.conns === 0, 'the collector to reset the connection');
  } finally {
    await undo();
  }
}

describe('IPFIX over TCP: a reset with messages the collector never acknowledged', () => {
  it('with a spool they go again on the next connection: every record arrives, once', async () => {
    const p = start(join(dir, 'spool'));
    try {
      await resetWithUnacked(p);
      await p.until((s) => s.records >= 300, 'all 300 records at the collector');
      const closed = await p.ask('close');
      expect(closed.records).toBe(300);
      expect(closed.distinct).toBe(300);
      expect(closed.stats).toMatchObject({ sent: 300, dropped: 0, queued: 0 });
    } finally {
      await p.stop();
    }
  });

  it('without one they are counted as dropped, not sent', async () => {
    const p = start('memory');
    try {
      await resetWithUnacked(p);
      const after = await p.ask('count');
      expect(after.records).toBe(100);
      expect(after.stats.sent + after.stats.dropped).toBe(300);
      expect(after.stats.sent).toBe(100);
      expect(after.stats.dropped).toBe(200);
    } finally {
      await p.stop();
    }
  });
});

/** A TCP server in the namespace that reads nothing until told (a line on stdin), then says what it got. */
const HOLDING_SERVER = `
const { createServer } = require('node:net');
let got = 0;
const srv = createServer((c) => {
  c.pause();
  process.stdin.once('data', () => c.resume());
  c.on('data', (d) => (got += d.length));
  c.on('error', () => {});
  c.on('close', () => { console.log(JSON.stringify({ got })); process.exit(0); });
});
srv.listen(Number(process.argv[1]), '127.0.0.1', () => console.log('{"listening":true}'));
`;

/** A writer of 32 MiB (with SO_LINGER 0 when told `abort`) that says when it has written. */
const WRITER = `
const { connect } = require('node:net');
import(process.argv[2] + '/src/netlink/inet.js').then(({ abortOnClose }) => {
  const s = connect(Number(process.argv[1]), '127.0.0.1', () => {
    if (process.argv[3] === 'abort') abortOnClose(s._handle.fd);
    s.write(Buffer.alloc(32 << 20));
    console.log('{"writing":true}');
  });
});
`;

function nodeIn(script: string, args: string[]) {
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', script, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: Record<string, number | boolean>[] = [];
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  const said = (key: string, what: string) =>
    waitFor(() => lines.some((l) => key in l), { timeoutMs: 30_000, what: () => `${what} (${err})` }).then(
      () => lines.find((l) => key in l)![key] as number,
    );
  return { child, said, closed };
}

describe('IPFIX over TCP with a spool: the socket resets on close (SO_LINGER 0)', () => {
  it("a killed writer's unacknowledged bytes are reset, not delivered after it died (then sent again: duplicates)", async () => {
    const got: Record<string, { unacked: number; got: number }> = {};
    for (const mode of ['abort', 'plain']) {
      const server = nodeIn(HOLDING_SERVER, ['4741']);
      await server.said('listening', 'the server listening');
      const writer = nodeIn(WRITER, ['4741', DIST, mode]);
      await writer.said('writing', 'the writer writing');
      // Its kernel holds what the server has not taken (ss's Send-Q): over 1 MiB before it is killed.
      await waitFor(async () => (await sendQueue(4741)) > 1 << 20, {
        timeoutMs: 30_000,
        what: 'the writer holding unacknowledged bytes',
      });
      const unacked = await sendQueue(4741);
      writer.child.kill('SIGKILL');
      await writer.closed;
      server.child.stdin!.write('read\n');
      got[mode] = { unacked, got: await server.said('got', 'the server reading to the end') };
      await server.closed;
    }
    // Without it the dead writer's kernel sends everything on; with it, only what the server had already.
    expect(got.plain.got).toBeGreaterThanOrEqual(got.plain.unacked);
    expect(got.abort.got).toBeLessThan(got.abort.unacked / 2);
  });
});
