/**
 * For flowgrabd's adversarial tests: a bystander that must not notice the
 * attack. A victim flow (root, replaying a long recording at real speed)
 * keeps receiving records, and a third connection's `hello` is answered,
 * for as long as the attack runs; plus the daemon's RSS from /proc.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type RemoteFlowgrab } from '../../src/daemon/client.js';
import { waitFor } from '../../src/testing/lab/index.js';
import { procMemory, RawClient } from './daemon.js';

/** A recording of `n` records 10 ms apart: replayed at speed 1 it lasts n/100 seconds. */
export function writeSlowRecording(file: string, n = 60_000): void {
  const t0 = 1_700_000_000_000;
  const lines = [JSON.stringify({ flowgrab: 'test', version: 1, host: 'test', started: t0, sources: [] })];
  for (let i = 0; i < n; i++) lines.push(JSON.stringify({ ts: t0 + i * 10, seq: i }));
  writeFileSync(file, `${lines.join('\n')}\n`);
}

/** The bystanders' slow recording, written to `dir` and readable by every test user; returns its path. */
export function slowRecording(dir: string): string {
  const file = join(dir, 'slow.ndjson');
  writeSlowRecording(file);
  chmodSync(file, 0o644);
  return file;
}

/** Resident memory of a process in bytes (VmRSS). */
export function rssOf(pid: number): number {
  return procMemory(pid).rss;
}

export class Bystanders {
  received = 0;
  helloAnswered = 0;
  readonly helloFailures: string[] = [];
  private probing = false;
  private probeLoop?: Promise<void>;
  /** Woken by each victim record, and by stop(). */
  private onRecord?: () => void;

  private constructor(
    private readonly fg: RemoteFlowgrab,
    private readonly prober: RawClient,
  ) {}

  /** Root's victim flow replaying `recording`, and a prober connection; resolves once records flow. */
  static async start(socket: string, recording: string): Promise<Bystanders> {
    const fg = await connect(socket);
    const prober = await RawClient.connect(socket);
    const b = new Bystanders(fg, prober);
    const flow = fg.create({ name: 'victim' });
    flow.populate(`replay(file=${recording}, speed=1)`);
    await flow.instantiate();
    flow.records$.subscribe({
      next: () => {
        b.received++;
        b.onRecord?.();
      },
      error: () => {},
    });
    await flow.activate();
    await b.stillReceiving(20);
    b.probing = true;
    b.probeLoop = b.probe();
    return b;
  }

  private async probe(): Promise<void> {
    while (this.probing) {
      try {
        const r = await this.prober.request({ op: 'hello' }, 10_000);
        if (r.ok === true) this.helloAnswered++;
        else this.helloFailures.push(JSON.stringify(r));
      } catch (e) {
        this.helloFailures.push((e as Error).message);
        return;
      }
      // The probe's pace, light next to the attack: a hello per 5 victim records (about 20 a second).
      await this.records(5);
    }
  }

  /** Resolves once the victim got `n` more records, or the probe stops. */
  private records(n: number): Promise<void> {
    const until = this.received + n;
    return new Promise((resolve) => {
      this.onRecord = () => {
        if (this.received < until && this.probing) return;
        this.onRecord = undefined;
        resolve();
      };
    });
  }

  /** Waits (bounded) until the victim got `n` more records than now. */
  async stillReceiving(n = 20): Promise<void> {
    const from = this.received;
    await waitFor(() => this.received >= from + n, {
      timeoutMs: 15_000,
      what: `the victim flow to get ${n} more records`,
    });
  }

  /** The hello probe answered at least `n` more times from now, with no failure. */
  async stillAnswering(n = 3): Promise<void> {
    const from = this.helloAnswered;
    await waitFor(
      () => {
        if (this.helloFailures.length) throw new Error(`hello failed: ${this.helloFailures[0]}`);
        return this.helloAnswered >= from + n;
      },
      { timeoutMs: 15_000, what: `${n} more hello answers` },
    );
  }

  /** Both bystanders fine right now: new records and new hello answers. */
  async unharmed(): Promise<void> {
    await Promise.all([this.stillReceiving(), this.stillAnswering()]);
  }

  async stop(): Promise<void> {
    this.probing = false;
    this.onRecord?.();
    await this.probeLoop;
    this.prober.destroy();
    await this.fg.close().catch(() => {});
  }
}

/**
 * The attacker, run as an unprivileged user with `node -e ATTACK SOCKET JSON`.
 * Modes: `flood` sends `frames` (objects) `repeat` times without waiting,
 * reading replies; `spam` never reads and writes `frame` for `ms`; `partial`
 * opens `conns` connections that each start a frame of `claim` bytes and
 * send `send` of them; `conns` opens `conns` idle connections; `unread` opens
 * `conns` connections that write `bytes` of empty frames and never read. It prints one
 * JSON line: replies seen (ok / errors by code, first message per code),
 * connections the daemon closed, and whether it finished.
 */
export const ATTACK = `
const net = require('node:net');
const [socket, cfgText] = process.argv.slice(1);
const cfg = JSON.parse(cfgText);
const res = { ok: 0, errors: {}, messages: {}, closed: 0, frames: 0, biggest: 0 };
const frame = (o) => { const b = Buffer.from(JSON.stringify(o)); const h = Buffer.alloc(4); h.writeUInt32BE(b.length); return Buffer.concat([h, b]); };
function open(read = true) {
  return new Promise((resolve) => {
    const s = net.createConnection(socket);
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const len = buf.readUInt32BE(0);
        const m = JSON.parse(buf.subarray(4, 4 + len).toString());
        buf = buf.subarray(4 + len);
        res.frames++;
        res.biggest = Math.max(res.biggest, len);
        if (m.ok === true) res.ok++;
        else if (m.ok === false) { res.errors[m.error.code] = (res.errors[m.error.code] || 0) + 1; res.messages[m.error.code] ??= m.error.message; }
        wake();
      }
    });
    s.on('close', () => { res.closed++; wake(); });
    s.on('error', () => {});
    s.once('connect', () => { if (!read) s.pause(); resolve(s); });
  });
}
// Re-checks what until() waits for: called on every reply and hang-up.
let wake = () => {};
// Waits for a fact, looked at whenever a reply or a hang-up comes; a bound that runs out is reported
// (res.timedOut), never passed over silently.
function until(pred, ms, what) {
  return new Promise((resolve) => {
    const done = () => { clearTimeout(bound); wake = () => {}; resolve(); };
    const bound = setTimeout(() => { if (!pred()) res.timedOut = what; done(); }, ms);
    wake = () => { if (pred()) done(); };
    wake();
  });
}
(async () => {
  if (cfg.mode === 'flood') {
    const s = await open();
    let id = 1;
    for (let r = 0; r < cfg.repeat; r++) for (const f of cfg.frames) {
      // "$n" stands for this round's flow id (each round creates one flow: ids 1, 2, 3, ...).
      // "$nulls" stands for a list of cfg.nulls nulls (too big for the command line).
      const nulls = cfg.nulls ? '[' + 'null,'.repeat(cfg.nulls - 1) + 'null]' : '[]';
      const body = JSON.parse(JSON.stringify(f).replaceAll('"$n"', String(r + 1)).replaceAll('"$nulls"', nulls));
      if (!s.write(frame({ v: 1, id: id++, ...body }))) await new Promise((r) => s.once('drain', r));
      if (s.destroyed) break;
    }
    const want = id - 1;
    await until(() => res.ok + Object.values(res.errors).reduce((a, b) => a + b, 0) >= want || res.closed > 0, 30000, 'every reply');
  } else if (cfg.mode === 'spam') {
    const s = await open(false);
    const f = frame({ v: 1, id: 1, ...cfg.frame });
    let written = 0;
    // The attack lasts cfg.ms (the scenario, not a wait). It writes without reading: what the daemon will not
    // take piles up here, in the attacker, up to 16 MiB; then it waits until the daemon takes some (drain),
    // hangs up, or the attack is over.
    let over = false;
    const end = new Promise((r) => setTimeout(() => { over = true; r(); }, cfg.ms));
    while (!over && !s.destroyed) {
      if (s.writableLength < 16 * 1024 * 1024) {
        for (let i = 0; i < 200; i++) s.write(f);
        written += 200;
        await new Promise((r) => setImmediate(r));
      } else {
        await new Promise((r) => {
          const go = () => { s.off('drain', go); s.off('close', go); r(); };
          s.on('drain', go);
          s.on('close', go);
          end.then(go);
        });
      }
    }
    res.written = written;
    s.resume();
    // Reading again, it must get replies: the daemon stopped reading it, it did not drop what it owed.
    await until(() => res.ok >= (cfg.wantOk || 1) || res.closed > 0, cfg.settleMs || 5000, 'replies after reading again');
  } else if (cfg.mode === 'unread') {
    // conns connections that never read, each writing cfg.bytes of empty frames (4 zero bytes: each answered
    // "not JSON"); then it waits, still not reading, for the daemon to hang up on every one (a pending write
    // fails when it does).
    const socks = [];
    for (let i = 0; i < cfg.conns; i++) {
      const s = await open(false);
      for (let sent = 0; sent < cfg.bytes; sent += 65536) s.write(Buffer.alloc(65536));
      socks.push(s);
    }
    await until(() => res.closed >= cfg.conns, cfg.waitMs || 0, 'every connection closed');
  } else if (cfg.mode === 'partial' || cfg.mode === 'conns') {
    const socks = [];
    for (let i = 0; i < cfg.conns; i++) {
      const s = await open();
      if (cfg.mode === 'partial') { const h = Buffer.alloc(4); h.writeUInt32BE(cfg.claim); s.write(Buffer.concat([h, Buffer.alloc(cfg.send, 0x20)])); }
      socks.push(s);
    }
    await until(() => res.closed >= cfg.conns, cfg.waitMs || 0, 'every connection closed');
    res.open = socks.filter((s) => !s.destroyed).length;
  }
  res.done = true;
  process.stdout.write(JSON.stringify(res) + '\\n');
  process.exit(0);
})();
`;

export interface AttackResult {
  ok: number;
  errors: Record<string, number>;
  messages: Record<string, string>;
  closed: number;
  frames: number;
  /** The longest frame the daemon sent (bytes). */
  biggest: number;
  open?: number;
  written?: number;
  /** The fact the attacker waited for and did not see within its bound. */
  timedOut?: string;
  done: boolean;
}

/**
 * A raw queue client (`node -e QUEUE_PEEK SOCKET MARK`): registers MARK, prints
 * each packet exactly as the daemon sent it (one JSON line each, or the
 * error), and accepts it.
 */
export const QUEUE_PEEK = `
const net = require('node:net');
const [socket, mark] = process.argv.slice(1);
const frame = (o) => { const b = Buffer.from(JSON.stringify(o)); const h = Buffer.alloc(4); h.writeUInt32BE(b.length); return Buffer.concat([h, b]); };
const s = net.createConnection(socket);
let buf = Buffer.alloc(0);
let id = 1;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
s.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
    const m = JSON.parse(buf.subarray(4, 4 + buf.readUInt32BE(0)).toString());
    buf = buf.subarray(4 + buf.readUInt32BE(0));
    if (m.id === 1) out(m.ok ? { registered: { mark: m.mark, reg: m.reg } } : { error: m.error });
    if (m.ev === 'packets') for (const p of m.packets) {
      out({ packet: p });
      s.write(frame({ v: 1, id: ++id, op: 'verdict', queue: m.queue, verdicts: [{ packetId: p.packetId, verdict: 'accept' }] }));
    }
  }
});
s.on('connect', () => s.write(frame({ v: 1, id: 1, op: 'queue', mark: Number(mark) })));
`;
