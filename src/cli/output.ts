/** CLI output: buffered NDJSON, conntrack-style text lines, and structured log lines on stderr. */
import type { Command } from 'commander';
import type { ConntrackEnd, ConntrackRecord } from '../sources/conntrack/record.js';
import type { SourceNotice } from '../sources/notice.js';

/**
 * Batches lines into large writes: lines are encoded straight into one
 * reusable 256 KiB buffer, written when full (one syscall per ~256 KiB
 * instead of one per record, and no string joins).
 */
export class LineWriter {
  private readonly buf = Buffer.allocUnsafe(256 * 1024);
  private off = 0;
  private readonly sync: boolean;

  /** `dropped()` true means the reader went away: lines are discarded instead of written. */
  constructor(
    private readonly out: { write(b: Uint8Array): unknown } = process.stdout,
    private readonly dropped: () => boolean = () => false,
  ) {
    this.sync = out.constructor.name === 'SyncWriteStream';
  }

  line(s: string): void {
    // A UTF-16 unit takes at most 3 UTF-8 bytes.
    if (this.off + 3 * s.length + 1 > this.buf.length) {
      this.flush();
      if (3 * s.length + 1 > this.buf.length) {
        if (!this.dropped()) this.out.write(Buffer.from(`${s}\n`));
        return;
      }
    }
    this.off += this.buf.write(s, this.off, 'utf8');
    this.buf[this.off++] = 10;
  }

  flush(): void {
    if (this.off === 0) return;
    if (this.dropped()) {
      this.off = 0;
      return;
    }
    // A sync stream (file, /dev/null) is done with the bytes on return; others keep them, so they get a copy.
    const bytes = this.sync ? this.buf.subarray(0, this.off) : Buffer.from(this.buf.subarray(0, this.off));
    this.out.write(bytes);
    this.off = 0;
  }
}

function end(e: ConntrackEnd): string {
  let s = `src=${e.src} dst=${e.dst}`;
  if (e.icmp) s += ` type=${e.icmp.type} code=${e.icmp.code} id=${e.icmp.id}`;
  else if (e.sport !== undefined) s += ` sport=${e.sport} dport=${e.dport}`;
  if (e.packets !== undefined) s += ` packets=${e.packets} bytes=${e.bytes}`;
  return s;
}

const EVENT_TAG = { dump: '', new: '    [NEW] ', update: ' [UPDATE] ', destroy: '[DESTROY] ' } as const;

/** One line in the spirit of `conntrack -L` / `conntrack -E`. */
export function formatConntrack(r: ConntrackRecord): string {
  const parts = [`${EVENT_TAG[r.type]}${r.proto.padEnd(8)} ${String(r.protonum).padEnd(2)}`];
  if (r.timeout !== undefined) parts.push(String(r.timeout));
  if (r.state) parts.push(r.state);
  parts.push(end(r.orig));
  if (!r.status.includes('SEEN_REPLY')) parts.push('[UNREPLIED]');
  parts.push(end(r.reply));
  if (r.status.includes('ASSURED')) parts.push('[ASSURED]');
  if (r.mark !== undefined) parts.push(`mark=${r.mark}`);
  if (r.zone !== undefined) parts.push(`zone=${r.zone}`);
  if (r.delta) parts.push(`delta=+${r.delta.orig.packets}/${r.delta.reply.packets}pkts`);
  if (r.resync) parts.push('(resync)');
  return parts.join(' ');
}

/**
 * The one error style of flowgrab's commands (`flowgrab`, `flowgrab lab`,
 * `flowgrabd`): `PROG: error: MESSAGE` on one line of stderr. Loss and
 * warnings stay logfmt lines (`logLine`), because they are logs, not failures.
 */
export function errorLine(message: string, prog = 'flowgrab'): string {
  return `${prog}: error: ${message.split('\n')[0]}\n`;
}

/**
 * Gives commander's own errors (unknown option, missing argument) the same
 * style, on `cmd` and every subcommand: `PROG: error: …`.
 */
export function errorStyle(cmd: Command, prog: string): Command {
  cmd.configureOutput({
    outputError: (str, write) => write(`${prog}: ${str.startsWith('error:') ? '' : 'error: '}${str}`),
  });
  for (const sub of cmd.commands) errorStyle(sub, prog);
  return cmd;
}

/** Writes `errorLine(message, prog)` to stderr. */
export function printError(message: string, prog = 'flowgrab'): void {
  process.stderr.write(errorLine(message, prog));
}

/** Structured log line (logfmt) on stderr: applications log, the library does not. */
export function logLine(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
  const kv = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' && /\s|"/.test(v) ? JSON.stringify(v) : String(v)}`);
  process.stderr.write(`level=${level} msg=${JSON.stringify(msg)}${kv.length ? ` ${kv.join(' ')}` : ''}\n`);
}

export function logNotice(n: SourceNotice): void {
  logLine(n.kind === 'loss' ? 'warn' : n.kind === 'warning' ? 'warn' : 'info', n.message, {
    notice: n.kind,
    source: n.source,
    count: n.count,
    where: n.where,
    netns: n.netns,
  });
}
