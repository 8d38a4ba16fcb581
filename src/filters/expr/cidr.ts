/** Address-prefix tests compiled once: IPv4 as integer arithmetic, IPv6 by bytes. */
import { isIP } from 'node:net';
import { parseIP } from '../../netlink/ip.js';

function v4(s: string): number {
  let n = 0;
  let part = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c === -2) {
      n = n * 256 + part;
      part = 0;
      dots++;
    } else if (c >= 0 && c <= 9) part = part * 10 + c;
    else return -1;
  }
  return dots === 3 ? n * 256 + part : -1;
}

export function cidrMatcher(cidr: string): (v: unknown) => boolean {
  const [ip, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  if (isIP(ip) === 4) {
    const size = 2 ** (32 - bits);
    const net = Math.floor(v4(ip) / size);
    return (v) => {
      if (typeof v !== 'string') return false;
      const n = v4(v);
      return n >= 0 && Math.floor(n / size) === net;
    };
  }
  const want = parseIP(ip);
  const whole = bits >> 3;
  const rest = bits & 7;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (v) => {
    if (typeof v !== 'string' || !v.includes(':')) return false;
    let b: Buffer;
    try {
      b = parseIP(v);
    } catch {
      return false;
    }
    if (b.length !== 16) return false;
    for (let i = 0; i < whole; i++) if (b[i] !== want[i]) return false;
    return rest === 0 || (b[whole] & mask) === (want[whole] & mask);
  };
}
