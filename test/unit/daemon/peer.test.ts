/**
 * Peer identity over a real Unix socket (no root needed): SO_PEERCRED from
 * the kernel, and the unix_diag path against the fake kernel, which answers
 * for the real inodes the way the captured replies show.
 */
import { fstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identifyPeer, peerOf, pidsHoldingSocket, sockDiagPeerOf } from '../../../src/daemon/peer.js';
import { FlowgrabError } from '../../../src/errors.js';
import { NLM_F_ACK, NLM_F_REQUEST } from '../../../src/netlink/enums.js';
import { encodeMessage, type NetlinkMessage } from '../../../src/netlink/nlmsg.js';
import * as U from '../../../src/netlink/sockdiag/enums.js';
import { decodeUnixDiagReq, encodeUnixDiag, type UnixDiagEntry } from '../../../src/netlink/sockdiag/unix.js';
import { ackReply, FakeKernel } from '../../../src/testing/fake-netlink.js';
import { until } from '../../helpers/wait.js';

let dir: string;
let server: Server;
const accepted: Socket[] = [];
const clients: Socket[] = [];
const waiters: ((s: Socket) => void)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fgpeer'));
  server = createServer((s) => {
    s.pause(); // nothing is read until a test asks: identification must not need the client's bytes
    const w = waiters.shift();
    if (w) w(s);
    else accepted.push(s);
  });
  await new Promise<void>((r) => server.listen(join(dir, 's.sock'), r));
});

afterAll(async () => {
  for (const s of [...accepted, ...clients]) s.destroy();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh connection: [server side, client side], with the client's first bytes already sent. */
async function connect(first?: Buffer): Promise<[Socket, Socket]> {
  const got = new Promise<Socket>((r) => waiters.push(r));
  const c = createConnection(join(dir, 's.sock'));
  clients.push(c);
  await new Promise((r) => c.once('connect', r));
  if (first) c.write(first);
  const s = await got;
  accepted.push(s);
  return [s, c];
}

const fdOf = (s: Socket) => (s as unknown as { _handle: { fd: number } })._handle.fd;
const inoOf = (s: Socket) => fstatSync(fdOf(s)).ino;

/** A fake kernel answering exact lookups from a table of sockets by inode, as unix_diag does. */
function diagKernel(table: Map<number, Omit<UnixDiagEntry, 'family' | 'type' | 'state' | 'cookie'>>) {
  const k = new FakeKernel();
  const requests: { ino: number; show: number; flags: number }[] = [];
  k.handler = (m: NetlinkMessage) => {
    const r = decodeUnixDiagReq(m.payload);
    requests.push({ ino: r.ino, show: r.show, flags: m.flags });
    if (r.ino === 0) return [ackReply(m, 22)];
    const row = table.get(r.ino);
    if (!row) return [ackReply(m, 2)];
    const e: UnixDiagEntry = {
      family: U.AF_UNIX,
      type: U.SOCK_STREAM,
      state: 1,
      cookie: [1, 0],
      ino: r.ino,
      shutdown: 0,
    };
    if (r.show & U.UDIAG_SHOW_PEER) e.peer = row.peer ?? 0;
    if (r.show & U.UDIAG_SHOW_UID && row.uid !== undefined) e.uid = row.uid;
    const reply = encodeMessage({ type: U.SOCK_DIAG_BY_FAMILY, flags: 0, seq: m.seq, pid: 0 }, encodeUnixDiag(e));
    return [reply, ackReply(m)];
  };
  return { k, requests };
}

describe('SO_PEERCRED', () => {
  it('gives this process: pid, uid and gid from the kernel', async () => {
    const [s] = await connect();
    const p = peerOf(s);
    expect(p).toMatchObject({ pid: process.pid, uid: process.getuid!(), gid: process.getgid!(), via: 'peercred' });
    await expect(identifyPeer(s, { method: 'peercred' })).resolves.toEqual(p);
    await expect(identifyPeer(s)).resolves.toEqual(p); // auto: SO_PEERCRED first
  });

  it('refuses a socket without a file descriptor', async () => {
    const [, c] = await connect();
    const detached = { _handle: undefined } as unknown as Socket;
    expect(() => peerOf(detached)).toThrow(/no file descriptor/);
    await expect(identifyPeer(detached)).rejects.toThrow(/no file descriptor/);
    c.destroy();
  });
});

describe('unix_diag (fake kernel behind the real sockets)', () => {
  it('looks up our socket for its peer, then the peer for its owner; the uid is the kernel answer', async () => {
    const [s] = await connect();
    const me = inoOf(s);
    const { k, requests } = diagKernel(
      new Map([
        [me, { ino: me, peer: 424242 }],
        [424242, { ino: 424242, peer: me, uid: 0 }],
      ]),
    );
    const p = await sockDiagPeerOf(s, { transport: k.transport, pid: false });
    expect(p).toMatchObject({ uid: 0, user: 'root', pid: 0, via: 'sockdiag' });
    expect(requests).toEqual([
      { ino: me, show: U.UDIAG_SHOW_PEER, flags: NLM_F_REQUEST | NLM_F_ACK },
      { ino: 424242, show: U.UDIAG_SHOW_PEER | U.UDIAG_SHOW_UID, flags: NLM_F_REQUEST | NLM_F_ACK },
    ]);
    expect(k.openSockets).toHaveLength(0); // the sock_diag socket is closed after each identification
  });

  it('a client that hung up (peer inode 0) or vanished (ENOENT) is refused', async () => {
    const [s] = await connect();
    const me = inoOf(s);
    const hungUp = diagKernel(new Map([[me, { ino: me, peer: 0 }]]));
    const e1 = await sockDiagPeerOf(s, { transport: hungUp.k.transport, pid: false }).catch((e) => e);
    expect(e1).toBeInstanceOf(FlowgrabError);
    expect(e1).toMatchObject({ code: 'FG_ERR_PERMISSION', message: expect.stringMatching(/hung up/) });
    const vanished = diagKernel(new Map([[me, { ino: me, peer: 99 }]]));
    await expect(sockDiagPeerOf(s, { transport: vanished.k.transport, pid: false })).rejects.toMatchObject({
      code: 'FG_ERR_PERMISSION',
      errno: 2,
      message: expect.stringMatching(/socket:\[99\]: not found \(ENOENT\)/),
    });
  });

  it('a peer that does not point back at us (inode reused) is refused', async () => {
    const [s] = await connect();
    const me = inoOf(s);
    const { k } = diagKernel(
      new Map([
        [me, { ino: me, peer: 7 }],
        [7, { ino: 7, peer: 8, uid: 0 }],
      ]),
    );
    await expect(sockDiagPeerOf(s, { transport: k.transport, pid: false })).rejects.toThrow(/no longer connected/);
  });

  it('auto falls back to unix_diag when SO_PEERCRED fails, and reports both when both fail', async () => {
    const [s] = await connect();
    const me = inoOf(s);
    const { k } = diagKernel(
      new Map([
        [me, { ino: me, peer: 5 }],
        [5, { ino: 5, peer: me, uid: 0 }],
      ]),
    );
    const broken = () => {
      throw new FlowgrabError('FG_ERR_SYSCALL', 'getsockopt(SO_PEERCRED) failed: EOPNOTSUPP');
    };
    const p = await identifyPeer(s, { peerCred: broken, transport: k.transport, pid: false });
    expect(p).toMatchObject({ uid: 0, via: 'sockdiag' });
    await expect(identifyPeer(s, { method: 'peercred', peerCred: broken })).rejects.toThrow(/EOPNOTSUPP/);
    const none = diagKernel(new Map());
    await expect(identifyPeer(s, { peerCred: broken, transport: none.k.transport, pid: false })).rejects.toMatchObject({
      code: 'FG_ERR_PERMISSION',
      message: expect.stringMatching(/EOPNOTSUPP.*unix_diag.*ENOENT/),
    });
  });

  it('what the client sends before and during identification is neither read nor believed', async () => {
    const claim = Buffer.from('{"v":1,"id":1,"op":"hello","uid":0,"user":"root","pid":1}\n');
    const [s, c] = await connect(claim);
    const me = inoOf(s);
    const { k } = diagKernel(
      new Map([
        [me, { ino: me, peer: 31 }],
        [31, { ino: 31, peer: me, uid: 4321 }],
      ]),
    );
    const identified = identifyPeer(s, { method: 'sockdiag', transport: k.transport, pid: false });
    c.write(claim);
    const p = await identified;
    expect(p).toMatchObject({ uid: 4321, gid: 4321, via: 'sockdiag' });
    expect(p.user).not.toBe('root');
    // The bytes are all still there for the protocol to read afterwards.
    const got: Buffer[] = [];
    s.on('data', (d) => got.push(d));
    s.resume();
    await until(() => Buffer.concat(got).length >= 2 * claim.length, 'both claims read back from the socket');
    expect(Buffer.concat(got).equals(Buffer.concat([claim, claim]))).toBe(true);
  });
});

describe('pids holding a socket (/proc/PID/fd)', () => {
  it('finds every process whose fd links to socket:[INODE], ascending', async () => {
    const proc = mkdtempSync(join(tmpdir(), 'fgproc'));
    try {
      const fd = (pid: string, n: string, target: string) => {
        mkdirSync(join(proc, pid, 'fd'), { recursive: true });
        symlinkSync(target, join(proc, pid, 'fd', n));
      };
      fd('300', '3', 'socket:[77]');
      fd('300', '4', 'socket:[78]');
      fd('12', '9', 'socket:[77]');
      fd('55', '0', '/dev/null');
      fd('56', '1', 'socket:[777]');
      mkdirSync(join(proc, 'self'));
      mkdirSync(join(proc, '999')); // no fd directory: a process that exited, or not ours to read
      expect(await pidsHoldingSocket(77, proc)).toEqual([12, 300]);
      expect(await pidsHoldingSocket(78, proc)).toEqual([300]);
      expect(await pidsHoldingSocket(79, proc)).toEqual([]);
    } finally {
      rmSync(proc, { recursive: true, force: true });
    }
  });

  it('finds this process for the client end of a real connection', async () => {
    const [, c] = await connect();
    expect(await pidsHoldingSocket(inoOf(c))).toContain(process.pid);
  });
});
