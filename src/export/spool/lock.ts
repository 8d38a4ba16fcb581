/**
 * One process per spool directory: the `lock` file in it, held with flock(2)
 * for as long as the spool is open (util/file-lock.ts). A killed owner's lock
 * goes with it; a live owner (this process too) makes the open fail with
 * FG_ERR_BUSY.
 */
import { join } from 'node:path';
import { lockFile } from '../../netlink/file-lock.js';

export function lockDir(dir: string): () => void {
  const lock = lockFile(join(dir, 'lock'), `spool ${dir}`, 'spool.lock');
  return () => lock.release();
}
