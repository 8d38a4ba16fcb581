import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { hostServed } from '../../../src/daemon/metrics.js';

describe('the metrics endpoint’s Host check (DNS rebinding)', () => {
  const me = hostname().toLowerCase();
  const first = me.split('.')[0];

  it('serves addresses, localhost, this machine’s name and the names it was told, any case, a trailing dot', () => {
    for (const h of [
      '127.0.0.1:9100',
      '[::1]:9100',
      '[::ffff:127.0.0.1]:9100',
      '10.0.0.1',
      'localhost:9100',
      'LOCALHOST.:9100',
    ])
      expect(hostServed(h), h).toBe(true);
    expect(hostServed(`${me}:9100`)).toBe(true);
    expect(hostServed(`${first.toUpperCase()}.:9100`)).toBe(true);
    expect(hostServed('router-metrics.lan:9100', ['router-metrics.lan'])).toBe(true);
    expect(hostServed('ROUTER-METRICS.LAN.:9100', ['router-metrics.lan.'])).toBe(true);
    expect(hostServed(undefined)).toBe(true);
  });

  it('refuses any other name: the rebinding page’s own domain, even one that begins with this machine’s name', () => {
    for (const h of [
      'rebind.evil.example:9100',
      `${first}.attacker.example:9100`,
      `${first}x:9100`,
      `x${first}:9100`,
      'router-metrics.lan:9100',
      'a b',
      '',
    ])
      expect(hostServed(h), h).toBe(false);
  });
});
