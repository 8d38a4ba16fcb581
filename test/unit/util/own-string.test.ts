import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyInterner } from '../../../src/filters/lib/keys.js';
import { ownString } from '../../../src/util/own-string.js';

/** A full garbage collection, from inside the test process (the flag is read when a context is made). */
function collect(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('ownString', () => {
  it('copies any string exactly, short or long, astral and lone surrogates included', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ maxLength: 5000 })), (s) => {
        expect(ownString(s)).toBe(s);
      }),
    );
    for (const s of ['', 'a', '10.0.0.1', '2001:db8::1234:5678:9abc', '\ud800', '😀'.repeat(20)])
      expect(ownString(s)).toBe(s);
  });

  it('keeps no large text alive through an interned key sliced from it', () => {
    const keys = new KeyInterner();
    const before = (() => {
      collect();
      return process.memoryUsage().heapUsed;
    })();
    // 64 MiB of one-byte characters; the key, a 24-character slice of it (a view, not a copy, in V8).
    (() => {
      const text = `${'x'.repeat(64 << 20)}${Math.random()}`;
      const key = text.slice(1000, 1024);
      expect(keys.id(key)).toBe(0);
    })();
    // The interner remembers the last key it was asked for as it came (one string): ask for another.
    expect(keys.id('another key')).toBe(1);
    collect();
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(16 << 20);
    // The interned copy is the same key.
    expect(keys.id('x'.repeat(24))).toBe(0);
  });
});
