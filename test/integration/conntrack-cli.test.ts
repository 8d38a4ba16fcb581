/**
 * `flowgrab conntrack` (the built CLI, dist/) against the real kernel in a
 * namespace of its own: NDJSON and text dumps equal `conntrack -L`, --count
 * and --duration end a run by themselves, and errors are one clear line.
 * Needs `npx tsc -p tsconfig.json` first.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { conntrackCommand } from '../../src/cli/conntrack.js';
import { ConntrackRecord } from '../../src/sources/conntrack/record.js';
import { isListening, type Netns, uniqueId } from '../../src/testing/lab/index.js';
import {
  conntrackNetns,
  countersOf,
  type KernelCtEntry,
  kernelIds,
  kernelTable,
  parseConntrackList,
  tupleKey,
} from '../helpers/conntrack-cli.js';
import { fileLab } from '../helpers/lab.js';

const cli = join(import.meta.dirname, '../../dist/bin/flowgrab.js');
let ns: Netns;

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the CLI; killed (SIGKILL) after `timeoutMs`. `whileRunning` runs until it exits. */
function flowgrab(args: string[], timeoutMs = 10_000, whileRunning?: (exited: () => boolean) => Promise<void>) {
  return new Promise<CliResult>((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let done = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      done = true;
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 });
    });
    whileRunning?.(() => done).catch(reject);
  });
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');

fileLab(async (lab) => {
  expect(existsSync(cli), `${cli} (run npx tsc -p tsconfig.json)`).toBe(true);
  ns = await conntrackNetns(lab, 'cli', {
    'net.netfilter.nf_conntrack_acct': 1,
    'net.netfilter.nf_conntrack_timestamp': 1,
    'net.netfilter.nf_conntrack_events': 1,
  });
  // TCP (an echo exchange, then TIME_WAIT), UDP and ICMP over IPv4 and IPv6.
  await lab.spawn(ns, ['socat', 'TCP-LISTEN:7777,reuseaddr,fork', 'EXEC:cat'], {
    name: 'echo',
    ready: () => isListening(ns, 'tcp', 7777),
  });
  await ns.exec(['socat', '-T', '2', '-', 'TCP4:127.0.0.1:7777'], { input: 'hello\n' });
  for (const dst of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) await ns.exec(['ping', '-c', '1', '-W', '1', dst]);
  await ns.exec(['ping', '-6', '-c', '1', '-W', '1', '::1']);
  await ns.exec(['socat', '-t', '0.1', '-', 'UDP4:127.0.0.5:9'], { input: 'x\n', allowFail: true });
  await ns.exec(['socat', '-t', '0.1', '-', 'UDP6:[::1]:9'], { input: 'x\n', allowFail: true });
});

/** A run of the CLI between two identical `conntrack -L` listings (retried until the table holds still). */
async function stableRun(args: string[]): Promise<{ kernel: KernelCtEntry[]; after: KernelCtEntry[]; out: CliResult }> {
  const steady = (t: KernelCtEntry[]) =>
    t
      .map((k) => `${k.id} ${tupleKey(k)} ${k.state} ${k.flags.join()} ${countersOf(k)}`)
      .sort()
      .join('\n');
  for (let i = 0; i < 10; i++) {
    const before = await kernelTable(ns.name);
    const out = await flowgrab(args);
    const after = await kernelTable(ns.name);
    // Not steady: try again at once (each try lists the table twice and runs the CLI).
    if (steady(before) === steady(after)) return { kernel: before, after, out };
  }
  throw new Error('the table never held still around a CLI run');
}

describe('flowgrab conntrack (CLI)', () => {
  it('--dump --json --netns NS prints one valid ConntrackRecord per line, exactly the entries of `conntrack -L`', async () => {
    const { kernel, out } = await stableRun(['conntrack', '--dump', '--json', '--netns', ns.name]);
    expect({ code: out.code, stderr: out.stderr }).toEqual({ code: 0, stderr: '' });
    expect(kernel.length).toBeGreaterThanOrEqual(7);
    const recs = lines(out.stdout).map((l) => ConntrackRecord.parse(JSON.parse(l)));
    expect(recs.map((r) => r.id).sort((a, b) => a - b)).toEqual(kernel.map((k) => k.id).sort((a, b) => a - b));
    const byId = new Map(kernel.map((k) => [k.id, k]));
    for (const r of recs) {
      const k = byId.get(r.id) as KernelCtEntry;
      expect(r).toMatchObject({ type: 'dump', netns: ns.name, family: k.family, protonum: k.protonum });
      expect(tupleKey(r)).toBe(tupleKey(k));
      expect(countersOf(r)).toBe(countersOf(k));
      expect(r.state).toBe(k.state);
    }
    expect(new Set(recs.map((r) => `${r.family} ${r.proto}`))).toEqual(
      new Set(kernel.map((k) => `${k.family} ${k.proto}`)),
    );
    expect(recs.some((r) => r.family === 'ipv6')).toBe(true);
    expect(recs.some((r) => r.proto === 'tcp' && r.state === 'TIME_WAIT')).toBe(true);
  });

  it('text mode prints one `conntrack -L`-like line per entry, with src=/dst= for both directions', async () => {
    const { kernel, after, out } = await stableRun(['conntrack', '--dump', '--netns', ns.name]);
    expect(out.code).toBe(0);
    const text = lines(out.stdout);
    expect(text).toHaveLength(kernel.length);
    for (const l of text) {
      expect(l.match(/ src=/g)).toHaveLength(2);
      expect(l.match(/ dst=/g)).toHaveLength(2);
    }
    // Read back with the conntrack -L parser: the same entries, flags, states and counters.
    const parsed = parseConntrackList(out.stdout, { requireId: false });
    const summary = (e: KernelCtEntry) =>
      `${tupleKey(e)} ${e.state ?? ''} ${countersOf(e)} mark=${e.mark ?? 0} ${['UNREPLIED', 'ASSURED'].filter((f) => e.flags.includes(f)).join()}`;
    expect(parsed.map(summary).sort()).toEqual(kernel.map(summary).sort());
    // Timeouts tick down: each printed one lies between the two listings' (±1 for rounding).
    const first = new Map(kernel.map((k) => [summary(k), k.timeout]));
    const second = new Map(after.map((k) => [summary(k), k.timeout]));
    for (const p of parsed) {
      expect(p.timeout).toBeLessThanOrEqual((first.get(summary(p)) as number) + 1);
      expect(p.timeout).toBeGreaterThanOrEqual((second.get(summary(p)) as number) - 1);
    }
  });

  it('--dump --count 3 prints exactly 3 records even when one kernel datagram carries more', async () => {
    const total = (await kernelIds(ns.name)).length;
    expect(total).toBeGreaterThan(3);
    const out = await flowgrab(['conntrack', '--dump', '--json', '--count', '3', '--netns', ns.name]);
    expect(out.code).toBe(0);
    expect(lines(out.stdout)).toHaveLength(3);
  });

  it('--dump --json, written straight from the kernel messages, prints what the record path prints; --zone filters', async () => {
    // Timeouts tick and each line has its own ts: the rest must be the same.
    const norm = (s: string) =>
      lines(s)
        .map((l) => l.replace(/"timeout":\d+,/, '').replace(/,"ts":\d+\}$/, '}'))
        .sort();
    let same = false;
    for (let i = 0; i < 5 && !same; i++) {
      const direct = await flowgrab(['conntrack', '--dump', '--json', '--netns', ns.name]);
      // --duration takes the record path (the stream conntrack() gives a program); a dump alone has no records.
      const viaRecords = await flowgrab(['conntrack', '--dump', '--json', '--duration', '60', '--netns', ns.name]);
      expect([direct.code, direct.stderr, viaRecords.code, viaRecords.stderr]).toEqual([0, '', 0, '']);
      expect(norm(direct.stdout).length).toBeGreaterThanOrEqual(7);
      // An entry can come or go between the two runs (TIME_WAIT ends): then once more.
      same = norm(direct.stdout).join('\n') === norm(viaRecords.stdout).join('\n');
    }
    expect(same).toBe(true);
    const zone0 = await flowgrab(['conntrack', '--dump', '--json', '--zone', '0', '--netns', ns.name]);
    expect(lines(zone0.stdout).length).toBeGreaterThanOrEqual(7);
    expect(lines(zone0.stdout).every((l) => ConntrackRecord.parse(JSON.parse(l)).zone === undefined)).toBe(true);
    const zone9 = await flowgrab(['conntrack', '--dump', '--json', '--zone', '9', '--netns', ns.name]);
    expect([zone9.code, zone9.stdout, zone9.stderr]).toEqual([0, '', '']);
  });

  it('output that cannot be written (/dev/full) is one clear error line and exit 1, on either path', () => {
    const full = openSync('/dev/full', 'w');
    try {
      for (const extra of [[], ['--duration', '60']]) {
        const r = spawnSync(process.execPath, [cli, 'conntrack', '--dump', '--json', ...extra, '--netns', ns.name], {
          stdio: ['ignore', full, 'pipe'],
          encoding: 'utf8',
          timeout: 20_000,
        });
        expect(r.status, r.stderr).toBe(1);
        expect(lines(r.stderr)).toEqual([expect.stringMatching(/^flowgrab: error: writing the output: ENOSPC/)]);
      }
    } finally {
      closeSync(full);
    }
  });

  it('--events new --count 3 --json exits 0 after exactly 3 lines while traffic flows', async () => {
    let i = 0;
    const out = await flowgrab(
      ['conntrack', '--events', 'new', '--count', '3', '--json', '--netns', ns.name],
      15_000,
      async (exited) => {
        // New flows (ICMP to fresh addresses) until the CLI has had its three.
        const deadline = Date.now() + 12_000;
        while (!exited() && Date.now() < deadline) {
          i++;
          await ns.exec(['ping', '-c', '1', '-W', '1', `127.0.2.${i % 250}`], { allowFail: true });
        }
      },
    );
    expect({ code: out.code, signal: out.signal }).toEqual({ code: 0, signal: null });
    const recs = lines(out.stdout).map((l) => ConntrackRecord.parse(JSON.parse(l)));
    expect(recs).toHaveLength(3);
    expect(new Set(recs.map((r) => r.id)).size).toBe(3);
    for (const r of recs) expect(r).toMatchObject({ type: 'new', proto: 'icmp', netns: ns.name });
    // They are real entries: the kernel still lists them (ICMP lives 30 s).
    const live = new Set(await kernelIds(ns.name));
    for (const r of recs) {
      expect(live.has(r.id)).toBe(true);
      expect(r.orig.dst).toMatch(/^127\.0\.2\.\d+$/);
    }
  });

  it('--duration 1 exits by itself, with status 0, not before a second', async () => {
    const out = await flowgrab(
      ['conntrack', '--events', 'new,destroy', '--json', '--duration', '1', '--netns', ns.name],
      20_000,
    );
    expect({ code: out.code, signal: out.signal, stderr: out.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    // It ran its second (exiting "by itself" is the status above: the runner's 20 s bound would have killed it).
    expect(out.ms).toBeGreaterThanOrEqual(1_000);
    for (const l of lines(out.stdout)) expect(['new', 'destroy']).toContain(ConntrackRecord.parse(JSON.parse(l)).type);
  });

  it('a bad flag or value: non-zero exit, nothing on stdout, one line on stderr naming it', async () => {
    for (const [args, what] of [
      [['conntrack', '--bogus'], '--bogus'],
      [['conntrack', '--events', 'sideways'], 'sideways'],
      [['conntrack', '--family', 'ipv5', '--dump'], 'ipv5'],
      [['conntrack', '--count', '-1'], '--count'],
      [['conntrack', '--count', '0'], '--count'],
    ] as const) {
      const out = await flowgrab([...args]);
      expect(out.code, args.join(' ')).not.toBe(0);
      expect(out.code, args.join(' ')).not.toBeNull();
      expect(out.stdout).toBe('');
      expect(lines(out.stderr), args.join(' ')).toHaveLength(1);
      expect(out.stderr).toContain(what);
    }
  });

  it('--netns of a namespace that does not exist: non-zero exit and one error line naming it', async () => {
    const missing = `${uniqueId()}-absent`;
    for (const args of [
      ['conntrack', '--dump', '--netns', missing],
      ['conntrack', '--dump', '--json', '--netns', missing],
      ['conntrack', '--events', 'new', '--netns', missing],
    ]) {
      const out = await flowgrab(args);
      expect(out.code, args.join(' ')).toBe(1);
      expect(out.stdout).toBe('');
      const errs = lines(out.stderr);
      expect(errs, args.join(' ')).toHaveLength(1);
      expect(errs[0]).toMatch(/^flowgrab: error: /);
      expect(errs[0]).toContain(missing);
    }
  });

  it('--help lists every option of the command', async () => {
    const out = await flowgrab(['conntrack', '--help']);
    expect(out.code).toBe(0);
    const longs = conntrackCommand()
      .options.map((o) => o.long)
      .filter((l): l is string => l !== undefined);
    expect(longs.length).toBeGreaterThanOrEqual(10);
    for (const l of longs) expect(out.stdout).toContain(l);
    for (const o of conntrackCommand().options) expect(out.stdout).toContain(o.description.split(' ')[0]);
    const top = await flowgrab(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/^\s+conntrack\b/m);
  });
});
