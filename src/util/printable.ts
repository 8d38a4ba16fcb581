/**
 * Text from the network or the kernel made safe to print on a terminal. A
 * LAN host chooses the names in its DNS packets, and a label may hold any
 * byte: printed raw, ESC sequences clear the screen or recolour it, a CR or
 * LF forges lines, and bidirectional overrides reorder what is shown. Such
 * characters become escapes, as `dig` and `less` show them: C0 and C1
 * controls and DEL as `\xHH`, line separators and bidi controls as
 * `\u{HHHH}`, and the backslash itself as `\\`, so an escape in the output
 * always means the character was there. JSON output needs none of this: it
 * escapes every control character itself.
 */

// C0 controls, DEL and C1 controls; U+2028/2029; bidi marks, embeddings, overrides and isolates; the backslash.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\\]/g;
const UNSAFE_TEST = new RegExp(UNSAFE.source);

function escapeChar(c: string): string {
  if (c === '\\') return '\\\\';
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
}

/** `s` with every character that could act on a terminal written as an escape (the common case: `s` itself). */
export function printable(s: string): string {
  return UNSAFE_TEST.test(s) ? s.replace(UNSAFE, escapeChar) : s;
}
