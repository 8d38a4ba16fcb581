/**
 * How deep a record from outside (a replayed line, a NATS message) nests. Records of flowgrab's sources nest
 * three or four levels; JSON.parse takes a text of 500 000 brackets, and every recursive walk after it
 * (JSON.stringify, structuredClone, a match on a path) would overflow the stack on one.
 */

/** Objects and arrays in a record from outside nest at most this deep. */
export const MAX_RECORD_DEPTH = 32;

/** Whether the JSON text `line` (valid JSON) nests objects and arrays more than `max` deep. */
export function nestedPast(line: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 34) {
      // A string: skip to its closing quote (a backslash escapes the next character).
      for (i++; i < line.length; i++) {
        const d = line.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
    } else if (c === 123 || c === 91) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}
