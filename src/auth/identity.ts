/**
 * Users and groups from /etc/passwd and /etc/group: the names a policy uses,
 * for the uid the kernel reported (the daemon) or the user named on the
 * command line (`flowgrab policy check`).
 */
import { readFileSync } from 'node:fs';
import type { Identity } from './policy.js';

interface Db {
  passwd: string;
  group: string;
}

const read = (): Db => ({ passwd: readFileSync('/etc/passwd', 'utf8'), group: readFileSync('/etc/group', 'utf8') });

function withGroups(user: string | undefined, uid: number, gid: number, db: Db): Identity {
  const groups: string[] = [];
  for (const line of db.group.split('\n')) {
    const [name, , g, members] = line.split(':');
    if (!name) continue;
    if (Number(g) === gid || (user && (members ?? '').split(',').includes(user))) groups.push(name);
  }
  return { uid, gid, ...(user ? { user } : {}), groups };
}

/** The identity of a uid (and gid from the kernel); names where /etc has them. */
export function identityOfUid(uid: number, gid?: number, db: Db = read()): Identity {
  const row = db.passwd.split('\n').find((l) => l.split(':')[2] === String(uid));
  const [user, , , g] = row?.split(':') ?? [];
  return withGroups(user, uid, gid ?? (g === undefined ? uid : Number(g)), db);
}

/** The identity of a user name, or undefined when there is no such user. */
export function identityOfUser(name: string, db: Db = read()): Identity | undefined {
  const row = db.passwd.split('\n').find((l) => l.split(':')[0] === name);
  if (!row) return undefined;
  const [, , uid, gid] = row.split(':');
  return withGroups(name, Number(uid), Number(gid), db);
}
