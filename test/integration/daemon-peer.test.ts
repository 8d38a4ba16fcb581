/**
 * Peer identity on this kernel, both paths (docs/kernel.md §5): SO_PEERCRED
 * and the unix_diag fallback, for root, a real unprivileged user (setpriv,
 * runuser + socat), and a user's client in another network namespace.
 * Every client first sends a frame claiming to be root; nobody believes it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identifyPeer, type Peer, type PeerSource } from '../../src/daemon/peer.js';
import { Netns, uniqueId, waitFor } from '../../src/testing/lab/index.js';
import { createUser, DIST, removeUser, sharedTempDir, type TestUser } from '../helpers/daemon.js';

const CLAIM = `${JSON.stringify({ v: 1, id: 1, op: 'hello', uid: 0, gid: 0, user: 'root', pid: 1 })}\n`;

// Connects, claims to be root, and stays until the server hangs up (at most 20 s).
const NODE_CLIENT = `
const s = require('node:net').createConnection(process.argv[1], () => s.write(process.argv[2]));
s.on('data', () => {}); s.on('close', () => process.exit(0)); s.on('error', () => process.exit(3));
setTimeout(() => process.exit(4), 20000);
`;
// Creates its socket while still root, then drops to the user and connects: unix_diag reports the creator.
const PY_SETUID_CLIENT = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
os.setgroups([]); os.setgid(int(sys.argv[3])); os.setuid(int(sys.argv[2]))
s.connect(sys.argv[1]); s.sendall(sys.argv[4].encode()); s.recv(1)
`;

// An identity server run as an unprivileged user: identifies one client both ways and prints the results.
const USER_SERVER = `
const [dist, path] = process.argv.slice(1);
const { identifyPeer } = await import(dist + '/src/daemon/peer.js');
const res = (p) => p.then((v) => ({ ok: v }), (e) => ({ error: e.message, code: e.code }));
const srv = (await import('node:net')).createServer({ allowHalfOpen: true }, async (conn) => {
  conn.pause();
  const out = { peercred: await res(identifyPeer(conn, { method: 'peercred' })), sockdiag: await res(identifyPeer(conn, { method: 'sockdiag' })) };
  process.stdout.write(JSON.stringify(out) + '\\n');
  conn.destroy(); srv.close();
});
srv.listen(path, () => process.stdout.write('{"listening":true}\\n'));
setTimeout(() => process.exit(5), 15000);
`;

let user: TestUser;
let dir: string;
let path: string;
let server: Server;
let ns: Netns;
const waiting: ((s: Socket) => void)[] = [];
const children: ChildProcess[] = [];
const conns: Socket[] = [];

beforeAll(async () => {
  user = await createUser();
  ns = await Netns.create(uniqueId('fgpn'));
  dir = sharedTempDir('fgpeer');
  path = join(dir, 'peer.sock');
  // Half-open allowed: a client's hang-up must not make Node close our end before we look at it.
  server = createServer({ allowHalfOpen: true }, (s) => {
    s.pause(); // identify first; frames are read only afterwards
    conns.push(s);
    waiting.shift()?.(s);
  });
  await new Promise<void>((r) => server.listen(path, r));
  chmodSync(path, 0o666);
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const c of conns) c.destroy(); // half-open ones would keep server.close() waiting
  await new Promise((r) => server?.close(r));
  await ns?.remove();
  await removeUser(user);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Starts a client; resolves with the server's end of its connection once accepted. */
async function accept(start: () => ChildProcess | Socket): Promise<{ conn: Socket; client: ChildProcess | Socket }> {
  const got = new Promise<Socket>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no connection within 10 s')), 10_000);
    waiting.push((s) => {
      clearTimeout(t);
      resolve(s);
    });
  });
  const client = start();
  if (!(client instanceof Socket)) children.push(client);
  return { conn: await got, client };
}

const spawnClient = (argv: string[]) => spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'ignore', 'ignore'] });
const asUser = (u: TestUser) => ['setpriv', '--reuid', u.name, '--regid', u.name, '--clear-groups', '--'];

/** Reads the claim the client sent; it must still be there, whole, after identification. */
async function readClaim(conn: Socket): Promise<string> {
  let got = '';
  conn.on('data', (d) => (got += d.toString()));
  conn.resume();
  await waitFor(() => got.length >= CLAIM.length, { timeoutMs: 5000, what: 'the client claim' });
  return got;
}

const statusUid = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

describe.each<PeerSource>(['peercred', 'sockdiag'])('%s', (method) => {
  const identify = (conn: Socket) => identifyPeer(conn, { method });

  it('root in this process: uid 0, our pid', async () => {
    const { conn, client } = await accept(() => {
      const c = createConnection(path);
      c.once('connect', () => c.write(CLAIM));
      return c;
    });
    const p = await identify(conn);
    expect(p).toMatchObject({ uid: 0, gid: 0, user: 'root', pid: process.pid, via: method });
    expect(await readClaim(conn)).toBe(CLAIM);
    conn.destroy();
    (client as Socket).destroy();
  });

  it('an unprivileged user (setpriv) who claims to be root is that user, with its pid', async () => {
    const { conn, client } = await accept(() =>
      spawnClient([...asUser(user), process.execPath, '-e', NODE_CLIENT, path, CLAIM]),
    );
    const p: Peer = await identify(conn);
    expect(p).toMatchObject({ uid: user.uid, gid: user.gid, user: user.name, via: method });
    expect(p.groups).toContain(user.name);
    expect(p.pid).toBe((client as ChildProcess).pid); // setpriv execs in place
    expect(await readClaim(conn)).toBe(CLAIM);
    conn.destroy();
  });

  it('runuser + socat: the socat process of that user', async () => {
    const { conn } = await accept(() => {
      const c = spawnClient(['runuser', '-u', user.name, '--', 'socat', '-', `UNIX-CONNECT:${path}`]);
      c.stdin!.write(CLAIM); // stdin stays open: socat stays connected until we hang up
      return c;
    });
    const p = await identify(conn);
    expect(p).toMatchObject({ uid: user.uid, user: user.name });
    // runuser forks: the peer is its socat child, running as the user.
    expect(readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim()).toBe('socat');
    expect(statusUid(p.pid)).toBe(user.uid);
    expect(await readClaim(conn)).toBe(CLAIM);
    conn.destroy();
  });

  it('a client in another network namespace is identified too', async () => {
    const { conn, client } = await accept(() =>
      spawnClient(['ip', 'netns', 'exec', ns.name, ...asUser(user), process.execPath, '-e', NODE_CLIENT, path, CLAIM]),
    );
    const pid = (client as ChildProcess).pid!;
    // It really is elsewhere: its network namespace is not ours.
    expect(readlinkSync(`/proc/${pid}/ns/net`)).not.toBe(readlinkSync('/proc/self/ns/net'));
    const p = await identify(conn);
    expect(p).toMatchObject({ uid: user.uid, gid: user.gid, user: user.name, pid, via: method });
    expect(await readClaim(conn)).toBe(CLAIM);
    conn.destroy();
  });
});

describe('where the two paths differ', () => {
  it('a socket created as root before setuid: SO_PEERCRED says the user, unix_diag the creator (root)', async () => {
    const { conn } = await accept(() =>
      spawnClient(['python3', '-c', PY_SETUID_CLIENT, path, String(user.uid), String(user.gid), CLAIM]),
    );
    const cred = await identifyPeer(conn, { method: 'peercred' });
    const diag = await identifyPeer(conn, { method: 'sockdiag' });
    expect(cred).toMatchObject({ uid: user.uid, gid: user.gid });
    expect(diag).toMatchObject({ uid: 0, user: 'root' });
    expect(diag.pid).toBe(cred.pid);
    expect(await readClaim(conn)).toBe(CLAIM);
    conn.destroy();
  });

  it('a client that hung up before identification is refused by unix_diag, not guessed', async () => {
    const { conn, client } = await accept(() => createConnection(path));
    const c = client as Socket;
    await new Promise<void>((r) => {
      c.once('close', () => r());
      c.destroy();
    });
    await waitFor(
      () =>
        identifyPeer(conn, { method: 'sockdiag', pid: false }).then(
          () => false,
          (e) => (e as { code?: string }).code === 'FG_ERR_PERMISSION' && /hung up/.test((e as Error).message),
        ),
      { timeoutMs: 10_000, what: 'unix_diag to see the hang-up' },
    );
    // SO_PEERCRED keeps the credentials of connect() time: still root, still this process.
    expect(await identifyPeer(conn, { method: 'peercred' })).toMatchObject({ uid: 0, pid: process.pid });
    conn.destroy();
  });

  it("an unprivileged server cannot look into the client's namespace: unix_diag refuses, SO_PEERCRED answers", async () => {
    const udir = join(dir, 'user');
    mkdirSync(udir);
    chownSync(udir, user.uid, user.gid); // the user's server makes its socket here
    const upath = join(udir, 'user.sock');
    const srv = spawn(
      asUser(user)[0],
      [...asUser(user).slice(1), process.execPath, '--input-type=module', '-e', USER_SERVER, DIST, upath],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(srv);
    let out = '';
    let err = '';
    srv.stdout!.on('data', (d) => (out += d.toString()));
    srv.stderr!.on('data', (d) => (err += d.toString()));
    await waitFor(() => out.includes('listening'), { timeoutMs: 10_000, what: `the user's server (${err})` });
    // root, from another namespace: the sockets of this connection live there, where this user may not go.
    const client = spawnClient(['ip', 'netns', 'exec', ns.name, process.execPath, '-e', NODE_CLIENT, upath, CLAIM]);
    children.push(client);
    await waitFor(() => out.trim().split('\n').length >= 2, { timeoutMs: 10_000, what: `identification (${err})` });
    const r = JSON.parse(out.trim().split('\n')[1]) as {
      peercred: { ok?: Peer };
      sockdiag: { error?: string; code?: string };
    };
    expect(r.peercred.ok).toMatchObject({ uid: 0, pid: client.pid, via: 'peercred' });
    expect(r.sockdiag).toMatchObject({
      code: 'FG_ERR_PERMISSION',
      error: expect.stringMatching(/not found \(ENOENT\)/),
    });
  });

  it('auto uses SO_PEERCRED on this kernel', async () => {
    const { conn } = await accept(() =>
      spawnClient([...asUser(user), process.execPath, '-e', NODE_CLIENT, path, CLAIM]),
    );
    expect(await identifyPeer(conn)).toMatchObject({ uid: user.uid, via: 'peercred' });
    conn.destroy();
  });
});
