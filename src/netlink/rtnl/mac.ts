/** Link-layer addresses ⇄ lower-case colon text ("02:00:00:00:77:11"), any length the device uses. */
import { FlowgrabError } from '../../errors.js';

/** MAX_ADDR_LEN in the kernel: no device address is longer. */
export const MAX_ADDR_LEN = 32;

export function formatMac(b: Buffer, o: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) {
    const x = b[o + i];
    s += (i ? ':' : '') + (x < 16 ? '0' : '') + x.toString(16);
  }
  return s;
}

const MAC_RE = /^(?:[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){0,31})?$/;

/** Colon text → bytes ("" gives an empty address, which the kernel sends for devices without one). */
export function parseMac(text: string): Buffer {
  if (!MAC_RE.test(text)) throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `not a link-layer address: ${text}`);
  return text === '' ? Buffer.alloc(0) : Buffer.from(text.replaceAll(':', ''), 'hex');
}
