/**
 * The SPIN example's own files: its RPC socket (no login, and it changes the firewall) and its database (every
 * device and the domains it looked up) are the app user's alone, whatever the umask it was started with.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
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
});
