import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatDns } from '../../../src/cli/dns.js';
import { formatAny } from '../../../src/cli/table.js';
import type { DnsRecord } from '../../../src/sources/dns/record.js';
import { printable } from '../../../src/util/printable.js';

/** Characters a terminal may act on: C0, DEL, C1, line separators, bidi controls. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const ACTS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** The inverse of printable(): every escape it writes, back to its character. */
const unprintable = (s: string) =>
  s.replace(/\\(\\|x([0-9a-f]{2})|u\{([0-9a-f]+)\})/g, (_m, all: string, x?: string, u?: string) =>
    x ? String.fromCharCode(Number.parseInt(x, 16)) : u ? String.fromCharCode(Number.parseInt(u, 16)) : all,
  );

describe('printable', () => {
  it('leaves ordinary text alone, Unicode included', () => {
    for (const s of ['example.com', 'xn--bcher-kva.example', 'bücher.example', '東京.jp', '10.0.0.1', ''])
      expect(printable(s)).toBe(s);
  });

  it('escapes what would act on a terminal: ESC sequences, CR/LF, NUL, C1, bidi overrides', () => {
    expect(printable('\u001b[2J\u001b[31mPWNED\u001b[0m\n')).toBe('\\x1b[2J\\x1b[31mPWNED\\x1b[0m\\x0a');
    expect(printable('a\rb\u0000c\u009bd')).toBe('a\\x0db\\x00c\\x9bd');
    expect(printable('evil\u202egnp.exe')).toBe('evil\\u{202e}gnp.exe');
    expect(printable('back\\slash')).toBe('back\\\\slash');
  });

  it('never lets an acting character through, and the escapes are unambiguous (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (s) => {
        const out = printable(s);
        expect(ACTS.test(out)).toBe(false);
        expect(unprintable(out)).toBe(s);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('text output of records from the network', () => {
  const hostile = '\u001b[2J\u001b[31mPWNED\u001b[0m\n';
  const rec: DnsRecord = {
    ts: 0,
    kind: 'response',
    family: 'ipv4',
    transport: 'udp',
    client: '10.0.0.2',
    clientPort: 40000,
    server: '10.0.0.1',
    serverPort: 53,
    hook: 'input',
    id: 1,
    qname: hostile,
    qtype: 'A',
    rcode: 'NOERROR',
    answers: [{ name: hostile, type: 'TXT', ttl: 1, data: `x${hostile}` }],
    resolved: [],
  };

  it('flowgrab dns prints a hostile name as escapes, on one line', () => {
    for (const r of [
      rec,
      { ...rec, kind: 'query' as const },
      { ...rec, resolved: [{ name: hostile, ip: '1.2.3.4', ttl: 1, via: [hostile] }] },
    ]) {
      const line = formatDns(r);
      expect(ACTS.test(line)).toBe(false);
      expect(line).toContain('\\x1b[2J');
    }
  });

  it('graph records printed as lines escape their values and keys', () => {
    const line = formatAny({ type: 'dns', ts: 0, qname: hostile, [`k${hostile}`]: 1, nested: { v: hostile } });
    expect(ACTS.test(line)).toBe(false);
  });
});
