// Unit checks of the SPIN example's safety rules: credentials, the HTTP
// guard, the broker's topic rules and the router-cut check, each fed
// hostile input.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { parsePrefix } from '../../../examples/spin/domain/ip.js';
import { RouterGuard } from '../../../examples/spin/domain/protect.js';
import { Credentials, hashPassword, MAX_CHECKS_IN_FLIGHT, Sessions } from '../../../examples/spin/io/auth.js';
import { mayPublish, maySubscribe } from '../../../examples/spin/io/mqtt/access.js';
import { HttpGuard } from '../../../examples/spin/io/web/guard.js';

const creds = new Credentials(`# comment\n\nalice:${hashPassword('s3cret')}\n`);
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

describe('Credentials', () => {
  it('checks passwords; refuses malformed files, unknown users, oversized input', async () => {
    expect(await creds.check('alice', 's3cret')).toBe(true);
    expect(await creds.check('alice', 's3cret')).toBe(true); // cached path
    expect(await creds.check('alice', 'wrong')).toBe(false);
    expect(await creds.check('bob', 's3cret')).toBe(false);
    expect(await creds.check('alice', 'x'.repeat(10_000))).toBe(false);
    expect(await creds.checkBasic(basic('alice', 's3cret'))).toBe(true);
    expect(await creds.checkBasic(basic('alice', 'nope'))).toBe(false);
    expect(await creds.checkBasic(`Basic ${'A'.repeat(5000)}`)).toBe(false);
    expect(await creds.checkBasic('Bearer abc')).toBe(false);
    expect(() => new Credentials('alice:plaintext\n')).toThrow(/line 1/);
    expect(() => new Credentials('# nobody\n')).toThrow(/no user/);
  });

  it('computes scrypt off the main thread, a few at a time: a guessing flood is refused, not queued', async () => {
    const c = new Credentials(`alice:${hashPassword('s3cret')}\n`);
    expect(await c.check('alice', 's3cret')).toBe(true);
    // Ten guesses at once: MAX_CHECKS_IN_FLIGHT are computed, the rest refused at once.
    let ticks = 0;
    const ticking = setInterval(() => ticks++, 1);
    const guesses = Promise.all(Array.from({ length: 10 }, (_, i) => c.check('alice', `guess${i}`)));
    expect(c.refused).toBe(10 - MAX_CHECKS_IN_FLIGHT);
    // Meanwhile a login checked before is answered at once, and the event loop runs.
    expect(await c.check('alice', 's3cret')).toBe(true);
    expect(await guesses).toEqual(Array(10).fill(false));
    clearInterval(ticking);
    expect(ticks).toBeGreaterThan(0);
    // Once they are done, guesses are computed again (and fail).
    expect(await c.check('alice', 'again')).toBe(false);
    expect(c.refused).toBe(10 - MAX_CHECKS_IN_FLIGHT);
  });

  it('sessions expire and are bounded in number', () => {
    let now = 0;
    const s = new Sessions(1000, 3);
    const first = s.create(now);
    expect(s.valid(first, now)).toBe(true);
    for (let i = 0; i < 5; i++) s.create(now);
    expect(s.valid(first, now)).toBe(false); // the oldest went
    const t = s.create(now);
    now += 1001;
    expect(s.valid(t, now)).toBe(false);
    expect(s.valid(undefined, now)).toBe(false);
  });
});

function fakeReq(headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}
function fakeRes(): ServerResponse & { status?: number } {
  const res = {
    headers: {} as Record<string, unknown>,
    setHeader(k: string, v: unknown) {
      res.headers[k] = v;
    },
    writeHead(status: number) {
      (res as { status?: number }).status = status;
      return res;
    },
    end() {
      return res;
    },
  };
  return res as unknown as ServerResponse & { status?: number };
}

describe('HttpGuard', () => {
  const guard = new HttpGuard('127.0.0.1', 13026, {
    hosts: ['router.lan'],
    origins: ['https://spin.example:8443'],
    credentials: creds,
    sessions: new Sessions(),
  });
  const ok = { host: '127.0.0.1:13026', 'content-type': 'application/json', authorization: basic('alice', 's3cret') };
  const status = async (h: Record<string, string>, json = true) => {
    const res = fakeRes();
    return (await guard.admit(fakeReq(h), res, json)) ? 200 : res.status;
  };

  it('admits its own hosts and origins with a login, and sets a session cookie', async () => {
    expect(await status(ok)).toBe(200);
    expect(await status({ ...ok, host: 'localhost:13026', origin: 'http://localhost:13026' })).toBe(200);
    expect(await status({ ...ok, host: '[::1]:13026' })).toBe(200);
    expect(await status({ ...ok, host: 'router.lan:13026' })).toBe(200);
    expect(await status({ ...ok, host: 'spin.example:8443', origin: 'https://spin.example:8443' })).toBe(200);
    expect(await status({ ...ok, 'content-type': 'Application/JSON; charset=utf-8' })).toBe(200);
  });

  it('refuses rebound hosts, foreign origins, simple content types and missing logins', async () => {
    expect(await status({ ...ok, host: 'evil.example' })).toBe(421);
    expect(await status({ ...ok, host: '127.0.0.1:13027' })).toBe(421);
    expect(await status({ ...ok, host: '' })).toBe(421);
    expect(await status({ ...ok, origin: 'http://evil.example' })).toBe(403);
    expect(await status({ ...ok, origin: 'null' })).toBe(403);
    expect(await status({ ...ok, origin: 'http://127.0.0.1:13026.evil.example' })).toBe(403);
    expect(await status({ ...ok, 'sec-fetch-site': 'cross-site' })).toBe(403);
    expect(await status({ ...ok, 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'no-cors' })).toBe(403);
    expect(await status({ ...ok, 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'navigate' }, false)).toBe(200);
    expect(await status({ ...ok, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' })).toBe(200);
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', ''])
      expect(await status({ ...ok, 'content-type': type })).toBe(415);
    expect(await status({ ...ok, 'content-type': 'text/plain' }, false)).toBe(200);
    expect(await status({ ...ok, authorization: '' })).toBe(401);
    expect(await status({ ...ok, authorization: '', cookie: 'spin_session=forged' })).toBe(401);
  });

  it('takes a GET that changes something (a capture) only from its own page or from no browser', () => {
    const own = (h: Record<string, string>) => guard.fromOwnPage(fakeReq({ host: '127.0.0.1:13026', ...h }));
    const browser = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0';
    // Fetch metadata, when the browser sends it, decides.
    expect(own({ 'sec-fetch-site': 'same-origin', 'user-agent': browser })).toBe(true);
    expect(own({ 'sec-fetch-site': 'none', 'user-agent': browser })).toBe(true);
    expect(own({ 'sec-fetch-site': 'same-site', 'user-agent': browser, referer: 'http://127.0.0.1:13026/' })).toBe(
      false,
    );
    expect(own({ 'sec-fetch-site': 'cross-site', 'user-agent': browser })).toBe(false);
    // Without it (plain http to a LAN address): our own Referer, or no browser at all.
    expect(own({ referer: 'http://127.0.0.1:13026/spin/', 'user-agent': browser })).toBe(true);
    expect(own({ referer: 'https://spin.example:8443/', 'user-agent': browser })).toBe(true);
    expect(own({ referer: 'http://evil.example/', 'user-agent': browser })).toBe(false);
    expect(own({ referer: 'not a url', 'user-agent': browser })).toBe(false);
    expect(own({ 'user-agent': browser })).toBe(false);
    expect(own({ 'user-agent': 'curl/8.14.1' })).toBe(true);
    expect(own({})).toBe(true);
  });
});

describe('broker topic rules', () => {
  it('only the app publishes under SPIN/traffic; the RPC topic needs a login; nobody retains', () => {
    for (const loggedIn of [false, true]) {
      expect(mayPublish('SPIN/traffic', false, loggedIn)).toBe(false);
      expect(mayPublish('SPIN/traffic/node/999', false, loggedIn)).toBe(false);
      expect(mayPublish('SPIN/jsonrpc/a', false, loggedIn)).toBe(false);
      expect(mayPublish('SPIN/commands', false, loggedIn)).toBe(true);
      expect(mayPublish('SPIN/commands', true, loggedIn)).toBe(false);
    }
    expect(mayPublish('SPIN/jsonrpc/q', false, false)).toBe(false);
    expect(mayPublish('SPIN/jsonrpc/q', false, true)).toBe(true);
    expect(mayPublish('SPIN/trafficX', false, false)).toBe(false);
  });

  it('anonymous subscriptions only under SPIN/traffic', () => {
    for (const f of ['SPIN/traffic/#', 'SPIN/traffic', 'SPIN/traffic/node/+', 'SPIN/commands'])
      expect(maySubscribe(f, false), f).toBe(true);
    for (const f of ['#', '+/#', 'SPIN/#', 'SPIN/+/node/1', 'SPIN/jsonrpc/a', '$SYS/#', 'SPIN/trafficX'])
      expect(maySubscribe(f, false), f).toBe(false);
    expect(maySubscribe('#', true)).toBe(true);
  });
});

describe('RouterGuard', () => {
  it('refuses prefixes that cover loopback, the router, or are too wide', async () => {
    const g = new RouterGuard(async () => ['192.168.77.1', 'fd77::1', 'not an address']);
    await g.refresh(true);
    const why = (t: string) => g.reason(parsePrefix(t)!);
    for (const t of [
      '0.0.0.0/0',
      '::/0',
      '10.0.0.0/7',
      '2001::/16',
      '127.0.0.1',
      '127.0.0.0/8',
      '::1',
      '192.168.77.1',
      '192.168.77.0/24',
      'fd77::/64',
    ])
      expect(why(t), t).toBeDefined();
    for (const t of ['10.0.0.0/8', '192.168.77.11', '2001:db8::/32', '198.51.100.10'])
      expect(why(t), t).toBeUndefined();
    expect(g.isProtectedIp('127.0.0.53')).toBe(true);
    expect(g.spareForName('192.168.77.1', 'router.lan.')).toBe(true);
    expect(g.spareForName('198.51.100.10', 'server.')).toBe(false);
  });
});
