/**
 * Opening a file for a client as the client: replay() in the daemon must
 * never read what the client itself could not. Node cannot receive a file
 * descriptor over a stream socket without native code, and re-checking
 * permissions by hand misses ACLs, LSMs and mounts; so a small child
 * (setpriv, sh, cat: about 2 MB, not a second Node) takes the client's uid,
 * gid and supplementary groups before it opens anything, and the kernel
 * decides. Only regular files are read; the bytes come back on a pipe that
 * the daemon reads with its bounded line reader. Readers are capped per uid
 * and in all, as each is a process.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { FlowgrabError } from '../errors.js';
import { REPLAY_READERS_PER_UID, REPLAY_READERS_TOTAL } from './limits.js';
import type { Peer } from './peer.js';

// Runs as the client. `test -f` first: a device or FIFO is refused without being opened (a FIFO would block).
const READ = `[ -f "$1" ] || { printf 'FG_ERR_INVALID_ARGUMENT %s: not a regular file' "$1" >&2; exit 3; }
[ -r "$1" ] || { printf 'FG_ERR_PERMISSION %s: EACCES' "$1" >&2; exit 3; }
exec cat -- "$1"`;

const readers = new Map<number, number>();
let total = 0;

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
  const mine = readers.get(peer.uid) ?? 0;
  if (mine >= REPLAY_READERS_PER_UID || total >= REPLAY_READERS_TOTAL) {
    const why = mine >= REPLAY_READERS_PER_UID ? `you have ${mine} replays reading` : 'too many replays are reading';
    process.nextTick(() =>
      out.destroy(new FlowgrabError('FG_ERR_BUSY', `replay: ${why}; try again when one ends`, { op: 'replay' })),
    );
    return out;
  }
  readers.set(peer.uid, mine + 1);
  total++;
  const groups = peerGroups(peer).filter((g) => Number.isInteger(g) && g >= 0);
  const child = spawn(
    'setpriv',
    [
      '--reuid',
      String(peer.uid),
      '--regid',
      String(peer.gid),
      ...(groups.length ? ['--groups', groups.join(',')] : ['--clear-groups']),
      '--',
      'sh',
      '-c',
      READ,
      'sh',
      file,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } },
  );
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    total--;
    const n = (readers.get(peer.uid) ?? 1) - 1;
    if (n > 0) readers.set(peer.uid, n);
    else readers.delete(peer.uid);
  };
  let err = '';
  child.stderr.on('data', (d: Buffer) => {
    if (err.length < 1024) err += d.toString('utf8');
  });
  child.stdout.pipe(out, { end: false });
  child.on('error', (e) => {
    release();
    out.destroy(new FlowgrabError('FG_ERR_SYSCALL', `replay: cannot start the reader: ${e.message}`, { op: 'replay' }));
  });
  child.on('close', (code) => {
    release();
    if (code === 0) {
      out.end();
      return;
    }
    if (out.destroyed) return;
    const text = err.trim().slice(0, 500);
    const [c, ...rest] = text.split(' ');
    const known = c === 'FG_ERR_PERMISSION' || c === 'FG_ERR_INVALID_ARGUMENT';
    out.destroy(
      new FlowgrabError(
        known ? c : 'FG_ERR_SYSCALL',
        `replay: ${known ? rest.join(' ') : text || `reader exited ${code}`}`,
        {
          op: 'replay',
        },
      ),
    );
  });
  // The reader goes with the stream (unsubscribe, line too long, daemon closing).
  out.on('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    release(); // killed: its slot is free now
  });
  return out;
}
