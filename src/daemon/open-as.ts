/**
 * Opening a file for a client as the client: replay() in the daemon must
 * never read what the client itself could not. Node cannot receive a file
 * descriptor over a stream socket without native code, and re-checking
 * permissions by hand misses ACLs, LSMs and mounts; so a short-lived child
 * drops to the client's uid, gid and supplementary groups before open(),
 * and the kernel decides. It opens without blocking (a FIFO cannot hang it),
 * accepts regular files only, and streams the bytes back on a pipe; the
 * daemon reads that with its usual bounded line reader.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { FlowgrabError } from '../errors.js';
import type { Peer } from './peer.js';

// Runs in the child as root until setuid; argv: uid gid groups(comma list) file.
const CHILD = `
const fs = require('node:fs');
const [uid, gid, groups, file] = process.argv.slice(1);
const fail = (code, msg) => { process.stderr.write(code + ' ' + msg); process.exit(3); };
try {
  process.setgroups(groups ? groups.split(',').map(Number) : []);
  process.setgid(Number(gid));
  process.setuid(Number(uid));
} catch (e) { fail('FG_ERR_PERMISSION', 'cannot take the client identity: ' + e.message); }
if (process.getuid() !== Number(uid) || process.geteuid() !== Number(uid)) fail('FG_ERR_PERMISSION', 'identity not taken');
let fd;
try { fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY); }
catch (e) { fail(e.code === 'EACCES' || e.code === 'EPERM' ? 'FG_ERR_PERMISSION' : 'FG_ERR_INVALID_ARGUMENT', file + ': ' + (e.code || e.message)); }
if (!fs.fstatSync(fd).isFile()) fail('FG_ERR_INVALID_ARGUMENT', file + ': not a regular file');
fs.createReadStream(null, { fd }).pipe(process.stdout);
`;

/** Supplementary groups of the client process, when /proc still shows it with the uid the kernel gave. */
export function peerGroups(peer: Peer): number[] {
  if (!peer.pid) return [];
  try {
    const status = readFileSync(`/proc/${peer.pid}/status`, 'utf8');
    const uids = /^Uid:\s+(.*)$/m.exec(status)?.[1].split(/\s+/).map(Number) ?? [];
    // A recycled pid (another process, maybe another user) must not lend its groups.
    if (uids[1] !== peer.uid) return [];
    return (/^Groups:\s*(.*)$/m.exec(status)?.[1] ?? '').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A stream of the file's bytes, read with the peer's rights; errors (denied, not a regular file) as stream errors. */
export function openAsPeer(peer: Peer, file: string): Readable {
  const out = new PassThrough();
  const groups = peerGroups(peer).filter((g) => Number.isInteger(g) && g >= 0);
  const child = spawn(process.execPath, ['-e', CHILD, String(peer.uid), String(peer.gid), groups.join(','), file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {},
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    if (err.length < 1024) err += d.toString('utf8');
  });
  child.stdout.pipe(out, { end: false });
  child.on('error', (e) => out.destroy(new FlowgrabError('FG_ERR_SYSCALL', `replay: ${e.message}`, { op: 'replay' })));
  child.on('close', (code) => {
    if (code === 0) {
      out.end();
      return;
    }
    if (out.destroyed) return;
    const [c, ...rest] = err.trim().slice(0, 500).split(' ');
    const known = c === 'FG_ERR_PERMISSION' || c === 'FG_ERR_INVALID_ARGUMENT';
    out.destroy(
      new FlowgrabError(known ? c : 'FG_ERR_SYSCALL', `replay: ${known ? rest.join(' ') : `reader exited ${code}`}`, {
        op: 'replay',
      }),
    );
  });
  // The reader goes with the stream (unsubscribe, line too long, daemon closing).
  out.on('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return out;
}
