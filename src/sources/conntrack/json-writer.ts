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

/** ASCII text as bytes, encoded once: copying bytes is cheaper than charCodeAt per character. */
const bytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
/** "00" … "99": two digits per division. */
const PAIRS = bytes(Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0')).join(''));

/** The constant pieces of a record: keys with their punctuation. */
const K = {
  type: bytes('{"type":'),
  id: bytes(',"id":'),
  family: bytes(',"family":'),
  proto: bytes(',"proto":'),
  protonum: bytes(',"protonum":'),
  orig: bytes(',"orig":'),
  reply: bytes(',"reply":'),
  state: bytes(',"state":'),
  status: bytes(',"status":['),
  helper: bytes(',"helper":'),
  labels: bytes(',"labels":'),
  delta: bytes(',"delta":'),
  resync: bytes(',"resync":true'),
  netns: bytes(',"netns":'),
  ts: bytes(',"ts":'),
  close: bytes('}\n'),
  srcKey: bytes('{"src":'),
  dstKey: bytes(',"dst":'),
  icmp: bytes(',"icmp":{"type":'),
  code: bytes(',"code":'),
  icmpId: bytes(',"id":'),
  packets: bytes(',"packets":'),
  bytes: bytes(',"bytes":'),
  saturated: bytes(',"saturated":true'),
  mark: bytes(',"mark":'),
  zone: bytes(',"zone":'),
  timeout: bytes(',"timeout":'),
  start: bytes(',"start":'),
  stop: bytes(',"stop":'),
  sport: bytes(',"sport":'),
  dport: bytes(',"dport":'),
};

/** The record's start up to its id, by type; and from the family up to the protocol, by family. */
const TYPE_HEAD = new Map<string, Uint8Array>(
  ['dump', 'new', 'update', 'destroy'].map((t) => [t, bytes(`{"type":"${t}","id":`)]),
);
const FAMILY = new Map<string, Uint8Array>(['ipv4', 'ipv6'].map((f) => [f, bytes(`,"family":"${f}","proto":`)]));

export interface ByteSink {
  write(b: Uint8Array): unknown;
}

export class ConntrackJsonWriter {
  private buf = Buffer.allocUnsafe(CHUNK);
  private off = 0;
  private readonly sync: boolean;

  constructor(private readonly out: ByteSink = process.stdout) {
    // A sync stream (file, /dev/null) is done with the bytes on return; others keep them, so they get a copy.
    this.sync = out.constructor?.name === 'SyncWriteStream';
  }

  /** Appends one record and a newline; writes the buffer out when it is nearly full. */
  record(r: ConntrackRecord): void {
    if (this.off + RECORD_ROOM > this.buf.length) this.flush();
    const head = TYPE_HEAD.get(r.type);
    if (head) this.put(head);
    else {
      this.put(K.type);
      this.str(r.type);
      this.put(K.id);
    }
    this.num(r.id);
    const family = FAMILY.get(r.family);
    if (family) this.put(family);
    else {
      this.put(K.family);
      this.str(r.family);
      this.put(K.proto);
    }
    this.str(r.proto);
    this.put(K.protonum);
    this.num(r.protonum);
    this.put(K.orig);
    this.end(r.orig);
    this.put(K.reply);
    this.end(r.reply);
    if (r.state !== undefined) {
      this.put(K.state);
      this.str(r.state);
    }
    this.put(K.status);
    for (let i = 0; i < r.status.length; i++) {
      if (i > 0) this.byte(44);
      this.str(r.status[i]);
    }
    this.byte(93);
    this.optNum(K.mark, r.mark);
    this.optNum(K.zone, r.zone);
    this.optNum(K.timeout, r.timeout);
    this.optNum(K.start, r.start);
    this.optNum(K.stop, r.stop);
    if (r.helper !== undefined) {
      this.put(K.helper);
      this.str(r.helper);
    }
    if (r.labels !== undefined) {
      this.put(K.labels);
      this.str(r.labels);
    }
    if (r.delta) {
      this.put(K.delta);
      this.utf8(JSON.stringify(r.delta));
    }
    if (r.resync) this.put(K.resync);
    if (r.netns !== undefined) {
      this.put(K.netns);
      this.str(r.netns);
    }
    this.put(K.ts);
    this.num(r.ts);
    this.put(K.close);
  }

  flush(): void {
    if (this.off === 0) return;
    const bytes = this.sync ? this.buf.subarray(0, this.off) : Buffer.from(this.buf.subarray(0, this.off));
    this.out.write(bytes);
    this.off = 0;
  }

  private end(e: ConntrackEnd): void {
    this.put(K.srcKey);
    this.str(e.src);
    this.put(K.dstKey);
    this.str(e.dst);
    if (e.icmp) {
      this.put(K.icmp);
      this.num(e.icmp.type);
      this.put(K.code);
      this.num(e.icmp.code);
      this.put(K.icmpId);
      this.num(e.icmp.id);
      this.byte(125);
    }
    this.optNum(K.sport, e.sport);
    this.optNum(K.dport, e.dport);
    if (e.packets !== undefined) {
      this.put(K.packets);
      this.num(e.packets);
      this.put(K.bytes);
      this.num(e.bytes ?? 0);
    }
    if (e.saturated) this.put(K.saturated);
    this.optNum(K.zone, e.zone);
    this.byte(125);
  }

  private optNum(key: Uint8Array, n: number | undefined): void {
    if (n === undefined) return;
    this.put(key);
    this.num(n);
  }

  /** Constant bytes (a key and its punctuation). */
  private put(k: Uint8Array): void {
    const b = this.buf;
    let o = this.off;
    for (let i = 0; i < k.length; i++) b[o++] = k[i];
    this.off = o;
  }

  private byte(b: number): void {
    this.buf[this.off++] = b;
  }

  /** Text known to be plain printable ASCII, without quotes or backslashes, with room made for it. */
  private ascii(s: string): void {
    const b = this.buf;
    let o = this.off;
    for (let i = 0; i < s.length; i++) b[o++] = s.charCodeAt(i);
    this.off = o;
  }

  /** A JSON string: plain printable ASCII inline, anything else through JSON.stringify. */
  private str(s: string): void {
    // One pass: copied as it is checked; a character JSON must escape (or one not ASCII) undoes the copy.
    this.room(s.length + 2);
    const b = this.buf;
    const start = this.off;
    let o = start;
    b[o++] = 34;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === 34 || c === 92) {
        this.off = start;
        this.utf8(JSON.stringify(s));
        return;
      }
      b[o++] = c;
    }
    b[o++] = 34;
    this.off = o;
  }

  private utf8(s: string): void {
    this.room(3 * s.length);
    this.off += this.buf.write(s, this.off, 'utf8');
  }

  /**
   * Makes room for `bytes` of text and RECORD_ROOM after it: the constant keys and the numbers that follow a
   * string are written unchecked (a typed array drops writes past its end, silently).
   */
  private room(bytes: number): void {
    if (bytes + RECORD_ROOM > this.buf.length - this.off) this.grow(bytes);
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
    const b = this.buf;
    const start = this.off;
    const end = start + count;
    let o = end;
    // Below 2^31 as an int32: the divisions become multiplications.
    let v = x | 0;
    for (; o - start >= 2; o -= 2) {
      const q = (v / 100) | 0;
      const p = (v - q * 100) << 1;
      b[o - 1] = PAIRS[p + 1];
      b[o - 2] = PAIRS[p];
      v = q;
    }
    if (o > start) b[--o] = 48 + v - ((v / 10) | 0) * 10;
    this.off = end;
  }

  /** Makes room for `bytes` more: out with what is there (a partial record is fine in a byte stream), then a bigger buffer if needed. */
  private grow(bytes: number): void {
    this.flush();
    if (bytes + RECORD_ROOM > this.buf.length) this.buf = Buffer.allocUnsafe(bytes + RECORD_ROOM);
  }
}
