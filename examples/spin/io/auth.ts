/**
 * Who may change the router: the credentials file shared by the HTTP
 * JSON-RPC, the web view and the embedded MQTT broker (spinweb's
 * `spinweb_password_file` and mosquitto's password file in one), and the
 * session cookies a browser gets after logging in once with Basic auth.
 *
 * File format, one user a line: `user:scrypt:<salt hex>:<hash hex>` (what
 * `writeCredentials` writes); `#` lines and empty lines are skipped. When no
 * file is given, the app makes one in its state directory with a random
 * password (mode 0600, the password next to it in `password`, also 0600).
 */
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readTrustedFile } from 'flowgrab';

const KEY_LEN = 32;
/** Bounds on what a credentials file and a login attempt may hold. */
const MAX_USERS = 1000;
const MAX_FIELD = 256;
/** The largest credentials file read: MAX_USERS lines of at most 64 + 7 + 128 + 1 + 64 characters fit. */
const MAX_FILE = 1 << 20;
/**
 * Password checks computing scrypt at once (on libuv's pool, ~50 ms each); a login past it is refused
 * without one. On the main thread, ten clients guessing made a logged-in client wait 2.4 s per request.
 */
export const MAX_CHECKS_IN_FLIGHT = 2;

interface Entry {
  readonly salt: Buffer;
  readonly hash: Buffer;
}

export function hashPassword(password: string, salt = randomBytes(16)): string {
  return `scrypt:${salt.toString('hex')}:${scryptSync(password, salt, KEY_LEN).toString('hex')}`;
}

/**
 * Writes a new credentials file holding one user, readable by its owner only. The file must not exist yet (nor a
 * symlink by its name): written through one, root would overwrite whatever it points at.
 */
export function writeCredentials(file: string, user: string, password: string): void {
  if (!/^[^:\s]{1,64}$/.test(user)) throw new Error(`credentials: bad user name ${JSON.stringify(user)}`);
  writeFileSync(file, `${user}:${hashPassword(password)}\n`, { mode: 0o600, flag: 'wx' });
}

export class Credentials {
  private readonly users = new Map<string, Entry>();
  /** Verified (user, password) pairs, so a Basic-auth client does not pay scrypt on every request. */
  private readonly verified = new Map<string, string>();

  constructor(text: string) {
    for (const [n, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const m = /^([^:\s]{1,64}):scrypt:([0-9a-f]{2,128}):([0-9a-f]{64})$/.exec(line);
      if (!m) throw new Error(`credentials line ${n + 1}: expected user:scrypt:<salt hex>:<hash hex>`);
      if (this.users.size >= MAX_USERS) throw new Error(`credentials: more than ${MAX_USERS} users`);
      this.users.set(m[1], { salt: Buffer.from(m[2], 'hex'), hash: Buffer.from(m[3], 'hex') });
    }
    if (this.users.size === 0) throw new Error('credentials: the file names no user');
  }

  /**
   * Reads a credentials file, refused unless only its owner (this user or root) may change it and everyone else
   * may not read its hashes (readTrustedFile): anyone who could write it could add a login.
   */
  static load(file: string): Credentials {
    return new Credentials(readTrustedFile(file, 'credentials', { maxBytes: MAX_FILE, secret: true }));
  }

  /** Password checks refused because MAX_CHECKS_IN_FLIGHT were running (a guessing flood). */
  refused = 0;
  private inFlight = 0;

  /**
   * Whether `password` is `user`'s. scrypt runs off the main thread, MAX_CHECKS_IN_FLIGHT at a time (more are
   * refused); a pair verified before is answered at once.
   */
  async check(user: string | undefined, password: string | undefined): Promise<boolean> {
    if (!user || password === undefined || user.length > MAX_FIELD || password.length > MAX_FIELD) return false;
    const e = this.users.get(user);
    if (!e) return false;
    if (this.verified.get(user) === password) return true;
    if (this.inFlight >= MAX_CHECKS_IN_FLIGHT) {
      this.refused++;
      return false;
    }
    this.inFlight++;
    try {
      const key = await new Promise<Buffer>((resolve, reject) =>
        scrypt(password, e.salt, KEY_LEN, (err, k) => (err ? reject(err) : resolve(k))),
      );
      const ok = timingSafeEqual(key, e.hash);
      if (ok) this.verified.set(user, password);
      return ok;
    } finally {
      this.inFlight--;
    }
  }

  /** `Authorization: Basic …` → checked. */
  async checkBasic(header: string | undefined): Promise<boolean> {
    const m = /^Basic\s+([A-Za-z0-9+/=]{1,700})$/i.exec(header ?? '');
    if (!m) return false;
    const text = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = text.indexOf(':');
    return colon > 0 && this.check(text.slice(0, colon), text.slice(colon + 1));
  }
}

/** The state directory's generated credentials: made on first use (user `spin`, random password). */
export function defaultCredentials(stateDir: string, log: (line: string) => void): Credentials {
  const file = join(stateDir, 'credentials');
  const pwFile = join(stateDir, 'password');
  if (!existsSync(file)) {
    const password = randomBytes(12).toString('base64url');
    // The password first: a run killed between the two leaves no credentials, and the next makes both again.
    rmSync(pwFile, { force: true });
    writeFileSync(pwFile, `${password}\n`, { mode: 0o600, flag: 'wx' });
    writeCredentials(file, 'spin', password);
    log(`made ${file}: user spin, password in ${pwFile} (readable by root only)`);
  }
  return Credentials.load(file);
}

/** Session cookies for browsers that logged in once; bounded in number and lifetime. */
export class Sessions {
  private readonly tokens = new Map<string, number>();

  constructor(
    private readonly ttlMs = 12 * 3_600_000,
    private readonly max = 1000,
  ) {}

  create(now = Date.now()): string {
    if (this.tokens.size >= this.max) {
      for (const [t, exp] of this.tokens) if (exp <= now) this.tokens.delete(t);
      // Still full: the oldest goes (Map keeps insertion order).
      if (this.tokens.size >= this.max) this.tokens.delete(this.tokens.keys().next().value as string);
    }
    const token = randomBytes(24).toString('base64url');
    this.tokens.set(token, now + this.ttlMs);
    return token;
  }

  valid(token: string | undefined, now = Date.now()): boolean {
    if (!token) return false;
    const exp = this.tokens.get(token);
    if (exp === undefined) return false;
    if (exp > now) return true;
    this.tokens.delete(token);
    return false;
  }
}
