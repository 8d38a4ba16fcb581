/**
 * What every HTTP request to the app passes before it reaches the RPC or the
 * web view: a `Host` the app serves (no DNS rebinding), an `Origin` (when the
 * browser sends one) among the app's own origins (no cross-site requests,
 * also checked on the MQTT WebSocket listener), `application/json` on the RPC
 * (no "simple" text/plain form posts), and a login: HTTP Basic against the
 * credentials file, after which a browser holds a `SameSite=Strict` session
 * cookie. Authentication is off only when the app is started with `auth: false`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { networkInterfaces } from 'node:os';
import type { Credentials, Sessions } from '../auth.js';

export const SESSION_COOKIE = 'spin_session';

export interface GuardOptions {
  /** Host names and addresses the app is reached by, besides its listen address and the localhost names. */
  readonly hosts?: readonly string[];
  /** Further allowed origins (`http://router.home.lan:13026`); their hosts are allowed too. */
  readonly origins?: readonly string[];
  readonly credentials?: Credentials;
  readonly sessions?: Sessions;
}

const LOCAL_NAMES = ['localhost', '127.0.0.1', '[::1]'];

const bracket = (h: string) => (h.includes(':') && !h.startsWith('[') ? `[${h}]` : h);

/** `host:port` values (lower case) the app answers to. */
export function servedHosts(listenHost: string, port: number, extra: readonly string[] = []): Set<string> {
  const names = new Set<string>([...LOCAL_NAMES, bracket(listenHost)]);
  if (listenHost === '0.0.0.0' || listenHost === '::') {
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) names.add(bracket(a.address.split('%')[0]));
  }
  for (const h of extra) names.add(bracket(h));
  const out = new Set<string>();
  for (const n of names) out.add(`${n.toLowerCase()}:${port}`);
  return out;
}

export class HttpGuard {
  readonly hosts: Set<string>;
  readonly origins: Set<string>;
  private readonly hostsOfOrigin: string[] = [];

  constructor(
    listenHost: string,
    port: number,
    private readonly opts: GuardOptions,
  ) {
    const extraHosts = [...(opts.hosts ?? [])];
    const extraOrigins: string[] = [];
    for (const o of opts.origins ?? []) {
      const u = new URL(o);
      extraOrigins.push(u.origin.toLowerCase());
      this.hostsOfOrigin.push(u.host.toLowerCase());
    }
    this.hosts = servedHosts(listenHost, port, extraHosts);
    for (const h of this.hostsOfOrigin) this.hosts.add(h);
    this.origins = new Set([...[...this.hosts].map((h) => `http://${h}`), ...extraOrigins]);
  }

  get authenticating(): boolean {
    return this.opts.credentials !== undefined;
  }

  /** An Origin header is fine when absent (not a browser's cross-site request) or one of ours. */
  originAllowed(origin: string | undefined): boolean {
    return origin === undefined || this.origins.has(origin.toLowerCase());
  }

  /**
   * A GET that changes something (a capture) came from our own page, or from no browser at all. A browser's
   * cross-site image or script request carries no Origin, and over plain http to a LAN address no fetch
   * metadata either: so it must show one of ours — fetch metadata saying same-origin or typed in (`none`), a
   * Referer of ours (our page sends it to its own origin), or a User-Agent that is no browser's (curl).
   */
  fromOwnPage(req: IncomingMessage): boolean {
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined) return site === 'same-origin' || site === 'none';
    const referer = req.headers.referer;
    if (referer !== undefined) return URL.canParse(referer) && this.origins.has(new URL(referer).origin.toLowerCase());
    return !/^Mozilla\//.test(req.headers['user-agent'] ?? '');
  }

  /**
   * Checks a request; answers it (and returns false) when refused. `json`:
   * the request must carry `Content-Type: application/json`.
   */
  async admit(req: IncomingMessage, res: ServerResponse, json: boolean): Promise<boolean> {
    const host = (req.headers.host ?? '').toLowerCase();
    if (!this.hosts.has(host)) return refuse(res, 421, `host ${JSON.stringify(host)} is not served here\n`);
    const origin = req.headers.origin;
    if (!this.originAllowed(origin)) return refuse(res, 403, 'cross-origin request refused\n');
    // Fetch metadata: nothing from another site; from a sibling origin of the same site
    // (router.lan:8080) only a navigation — no script, image or form request riding on a login.
    const site = req.headers['sec-fetch-site'];
    if (site === 'cross-site' || (site === 'same-site' && req.headers['sec-fetch-mode'] !== 'navigate'))
      return refuse(res, 403, 'cross-site request refused\n');
    if (json && mediaType(req.headers['content-type']) !== 'application/json')
      return refuse(res, 415, 'Content-Type must be application/json\n');
    const { credentials, sessions } = this.opts;
    if (!credentials) return true;
    if (sessions?.valid(cookie(req.headers.cookie, SESSION_COOKIE))) return true;
    if (await credentials.checkBasic(req.headers.authorization)) {
      // The client may have gone while the password was checked.
      if (res.writableEnded || res.destroyed) return false;
      if (sessions)
        res.setHeader(
          'set-cookie',
          `${SESSION_COOKIE}=${sessions.create()}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200`,
        );
      return true;
    }
    res.setHeader('www-authenticate', 'Basic realm="SPIN", charset="UTF-8"');
    return refuse(res, 401, 'authentication required\n');
  }
}

function refuse(res: ServerResponse, status: number, text: string): false {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(text);
  return false;
}

function mediaType(v: string | undefined): string {
  return (v ?? '').split(';')[0].trim().toLowerCase();
}

/** One cookie's value from a Cookie header (bounded: the header is cut at 8 KiB). */
export function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').slice(0, 8192).split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
