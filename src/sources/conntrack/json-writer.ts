/**
 * NDJSON for conntrack records written straight into a large byte buffer:
 * no string per record (conntrackToJson builds one, then it is copied again
 * as UTF-8). Its output is byte for byte conntrackToJson's plus "\n" (a test
 * holds them equal). ASCII goes in byte by byte; a string that needs escaping
 * or is not ASCII goes through JSON.stringify and a UTF-8 write.
 */
import type { ConntrackEnd, ConntrackRecord } from './record.js';

const CHUNK = 1 << 20;
/** Room kept free for one record before writing it; longer strings make room themselves. */
const RECORD_ROOM = 4096;

export interface ByteSink {
  write(b: Uint8Array): unknown;
}

export class ConntrackJsonWriter {
  private buf = Buffer.allocUnsafe(CHUNK);
  private off = 0;
  private readonly sync: boolean;

  constructor(private readonly out: ByteSink = process.stdout) {
    // A sync stream (file, /dev/null) is done with the bytes on return; others keep them, so they get a copy.
    this.sync = out.constructor.name === 'SyncWriteStream';
  }

  /** Appends one record and a newline; writes the buffer out when it is nearly full. */
  record(r: ConntrackRecord): void {
    if (this.off + RECORD_ROOM > this.buf.length) this.flush();
    this.ascii('{"type":"');
    this.ascii(r.type);
    this.ascii('","id":');
    this.num(r.id);
    this.ascii(',"family":"');
    this.ascii(r.family);
    this.ascii('","proto":');
    this.str(r.proto);
    this.ascii(',"protonum":');
    this.num(r.protonum);
    this.ascii(',"orig":');
    this.end(r.orig);
    this.ascii(',"reply":');
    this.end(r.reply);
    if (r.state !== undefined) {
      this.ascii(',"state":');
      this.str(r.state);
    }
    this.ascii(',"status":[');
    for (let i = 0; i < r.status.length; i++) {
      if (i > 0) this.byte(44);
      this.str(r.status[i]);
    }
    this.byte(93);
    this.optNum(',"mark":', r.mark);
    this.optNum(',"zone":', r.zone);
    this.optNum(',"timeout":', r.timeout);
    this.optNum(',"start":', r.start);
    this.optNum(',"stop":', r.stop);
    if (r.helper !== undefined) {
      this.ascii(',"helper":');
      this.str(r.helper);
    }
    if (r.labels !== undefined) {
      this.ascii(',"labels":');
      this.str(r.labels);
    }
    if (r.delta) {
      this.ascii(',"delta":');
      this.utf8(JSON.stringify(r.delta));
    }
    if (r.resync) this.ascii(',"resync":true');
    if (r.netns !== undefined) {
      this.ascii(',"netns":');
      this.str(r.netns);
    }
    this.ascii(',"ts":');
    this.num(r.ts);
    this.ascii('}\n');
  }

  flush(): void {
    if (this.off === 0) return;
    const bytes = this.sync ? this.buf.subarray(0, this.off) : Buffer.from(this.buf.subarray(0, this.off));
    this.out.write(bytes);
    this.off = 0;
  }

  private end(e: ConntrackEnd): void {
    this.ascii('{"src":"');
    this.ascii(e.src);
    this.ascii('","dst":"');
    this.ascii(e.dst);
    this.byte(34);
    if (e.icmp) {
      this.ascii(',"icmp":{"type":');
      this.num(e.icmp.type);
      this.ascii(',"code":');
      this.num(e.icmp.code);
      this.ascii(',"id":');
      this.num(e.icmp.id);
      this.byte(125);
    }
    this.optNum(',"sport":', e.sport);
    this.optNum(',"dport":', e.dport);
    if (e.packets !== undefined) {
      this.ascii(',"packets":');
      this.num(e.packets);
      this.ascii(',"bytes":');
      this.num(e.bytes ?? 0);
    }
    this.byte(125);
  }

  private optNum(key: string, n: number | undefined): void {
    if (n === undefined) return;
    this.ascii(key);
    this.num(n);
  }

  private byte(b: number): void {
    this.buf[this.off++] = b;
  }

  /** Text known to be plain ASCII (keys, addresses, enum names). */
  private ascii(s: string): void {
    const b = this.buf;
    let o = this.off;
    for (let i = 0; i < s.length; i++) b[o++] = s.charCodeAt(i);
    this.off = o;
  }

  /** A JSON string: plain printable ASCII inline, anything else through JSON.stringify. */
  private str(s: string): void {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === 34 || c === 92) {
        this.utf8(JSON.stringify(s));
        return;
      }
    }
    if (s.length + 2 > this.buf.length - this.off) this.grow(s.length + 2);
    this.byte(34);
    this.ascii(s);
    this.byte(34);
  }

  private utf8(s: string): void {
    if (3 * s.length > this.buf.length - this.off) this.grow(3 * s.length);
    this.off += this.buf.write(s, this.off, 'utf8');
  }

  /** Integers in the safe range digit by digit; anything else as JavaScript prints it (as `${n}` does). */
  private num(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) {
      this.ascii(String(n));
      return;
    }
    if (n >= 1e9) {
      // Ids, timestamps: split so the digit loop stays in small-integer arithmetic.
      const hi = Math.floor(n / 1e9);
      this.num(hi);
      this.digits(n - hi * 1e9, 9);
      return;
    }
    let count = 1;
    for (let t = 10; t <= n; t *= 10) count++;
    this.digits(n, count);
  }

  /** `x` (< 1e9) as exactly `count` digits, zero-padded. */
  private digits(x: number, count: number): void {
    const end = this.off + count;
    let o = end;
    for (let i = 0; i < count; i++) {
      const q = (x / 10) | 0;
      this.buf[--o] = 48 + x - q * 10;
      x = q;
    }
    this.off = end;
  }

  /** Makes room for `bytes` more: out with what is there (a partial record is fine in a byte stream), then a bigger buffer if needed. */
  private grow(bytes: number): void {
    this.flush();
    if (bytes + RECORD_ROOM > this.buf.length) this.buf = Buffer.allocUnsafe(bytes + RECORD_ROOM);
  }
}
