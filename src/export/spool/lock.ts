/**
 * One process per spool directory: a `lock` file made with O_EXCL holding the
 * owner's pid. A lock whose pid is gone (the owner was killed) is taken over;
 * a live owner (this process too) makes the open fail with FG_ERR_BUSY.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FlowgrabError } from '../../errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function lockDir(dir: string): () => void {
  const file = join(dir, 'lock');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = Number.NaN;
    try {
      owner = Number(readFileSync(file, 'utf8').trim());
    } catch {
      // Removed meanwhile: try again.
    }
    if (Number.isInteger(owner) && owner > 0 && alive(owner))
      throw new FlowgrabError('FG_ERR_BUSY', `spool ${dir} is in use by process ${owner}`, { op: 'spool.lock' });
    rmSync(file, { force: true });
  }
  throw new FlowgrabError('FG_ERR_BUSY', `spool ${dir}: could not take the lock`, { op: 'spool.lock' });
}
