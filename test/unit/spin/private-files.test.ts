/**
 * The SPIN example's own files: its RPC socket (no login, and it changes the firewall) and its database (every
 * device and the domains it looked up) are the app user's alone, whatever the umask it was started with.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultCredentials, writeCredentials } from '../../../examples/spin/io/auth.js';
import { listenRpcSocket } from '../../../examples/spin/io/servers.js';
import { SpinStore } from '../../../examples/spin/io/store.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'fg-spin-files-'));
  dirs.push(d);
  return d;
};
const modeOf = (p: string) => (statSync(p).mode & 0o777).toString(8);
let umask: number | undefined;
afterEach(() => {
  if (umask !== undefined) process.umask(umask);
  umask = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the SPIN example’s files', () => {
  it('its RPC socket is 0600 under any umask, and a file in its place is refused, not removed', async () => {
    umask = process.umask(0);
    const dir = tmp();
    const sock = join(dir, 'rpc.sock');
    const server = await listenRpcSocket(sock, async () => undefined);
    expect(modeOf(sock)).toBe('600');
    await new Promise((r) => server.close(r));
    const file = join(dir, 'precious');
    writeFileSync(file, 'keep me\n');
    await expect(listenRpcSocket(file, async () => undefined)).rejects.toThrow(/exists and is not a socket/);
    expect(readFileSync(file, 'utf8')).toBe('keep me\n');
  });

  it('its state directory is 0700 and its database files 0600 under any umask', () => {
    umask = process.umask(0);
    const dir = join(tmp(), 'state');
    const store = new SpinStore(dir);
    store.setLastId(7);
    expect(modeOf(dir)).toBe('700');
    for (const f of ['spin.db', 'spin.db-wal', 'spin.db-shm'].map((n) => join(dir, n)).filter(existsSync))
      expect(modeOf(f), f).toBe('600');
    expect(existsSync(join(dir, 'spin.db-wal'))).toBe(true);
    store.close();
  });

  it('a state directory that is a symlink, or that others may write in, is refused before anything is made or changed', () => {
    const base = tmp();
    // A directory of someone else's choosing, which root would chmod 0700 and fill through the link.
    const target = join(base, 'elsewhere');
    mkdirSync(target, { mode: 0o755 });
    chmodSync(target, 0o755);
    const link = join(base, 'state-link');
    symlinkSync(target, link);
    expect(() => new SpinStore(link)).toThrow(/SPIN state directory .*not a directory \(a symlink\?\)/);
    expect(modeOf(target)).toBe('755');
    expect(existsSync(join(target, 'spin.db'))).toBe(false);
    // A directory others may write in: they could plant the login files.
    const open = join(base, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(() => new SpinStore(open)).toThrow(/others may write in it/);
    expect(existsSync(join(open, 'spin.db'))).toBe(false);
    // Under one: nothing is made there either.
    expect(() => new SpinStore(join(open, 'state'))).toThrow(/others may write in .*open above it/);
  });

  it('login files are only ever made new: never written through a symlink or over a file in their place', () => {
    const dir = tmp();
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'root only\n');
    const file = join(dir, 'credentials');
    symlinkSync(victim, file);
    expect(() => writeCredentials(file, 'spin', 'pw')).toThrow(/EEXIST/);
    expect(readFileSync(victim, 'utf8')).toBe('root only\n');
    // The generated login: a password file in the way (a run killed between the two) is made again, not followed.
    const state = join(dir, 'state');
    mkdirSync(state, { mode: 0o700 });
    symlinkSync(victim, join(state, 'password'));
    const lines: string[] = [];
    const creds = defaultCredentials(state, (l) => lines.push(l));
    expect(readFileSync(victim, 'utf8')).toBe('root only\n');
    const password = readFileSync(join(state, 'password'), 'utf8').trim();
    expect(modeOf(join(state, 'password'))).toBe('600');
    expect(modeOf(join(state, 'credentials'))).toBe('600');
    return expect(creds.check('spin', password)).resolves.toBe(true);
  });
});
