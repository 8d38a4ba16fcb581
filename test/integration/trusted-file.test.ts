// readTrustedFile: files that decide what a privileged process lets others do (the daemon's policy, SPIN's
// logins) are read only when no other user could have changed them, nor a directory above them. Root (the
// integration project) chowns files and directories to a uid of nobody's.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, lchownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Credentials, writeCredentials } from '../../examples/spin/io/auth.js';
import { loadPolicy } from '../../src/auth/load.js';
import { readTrustedFile } from '../../src/util/trusted-file.js';
import { boundedScript, built } from '../helpers/bounded-child.js';

const OTHER = 4242; // a uid of nobody's
const top = mkdtempSync(join(tmpdir(), 'fg-trusted-file-'));
chmodSync(top, 0o755);
afterAll(() => rmSync(top, { recursive: true, force: true }));

let n = 0;
/** A new directory under `top` (mode 0755) holding `name` with `text` (mode 0644); its path. */
function fileIn(text = 'hello\n', name = 'f'): string {
  const dir = join(top, `d${n++}`);
  mkdirSync(dir, { mode: 0o755 });
  const file = join(dir, name);
  writeFileSync(file, text, { mode: 0o644 });
  return file;
}

const read = (file: string, opts: { maxBytes?: number; secret?: boolean } = {}) =>
  readTrustedFile(file, 'test file', { maxBytes: opts.maxBytes ?? 1 << 20, secret: opts.secret });

describe('readTrustedFile', () => {
  it('reads a file only its owner (root) may change, in directories only root may change', () => {
    expect(read(fileIn('policy text\n'))).toBe('policy text\n');
    const empty = fileIn('');
    expect(read(empty)).toBe('');
  });

  it('refuses a file others may write, or that belongs to another user', () => {
    const f = fileIn();
    chmodSync(f, 0o664);
    expect(() => read(f)).toThrow(/test file .*: others may write it \(mode 0664\): refusing to read it/);
    chmodSync(f, 0o646);
    expect(() => read(f)).toThrow(/others may write it/);
    chmodSync(f, 0o644);
    chownSync(f, OTHER, 0);
    expect(() => read(f)).toThrow(/it belongs to uid 4242/);
  });

  it('refuses a file under a directory another user owns or may write in, unless that one is sticky', () => {
    const f = fileIn();
    const dir = join(f, '..');
    chmodSync(dir, 0o777);
    expect(() => read(f)).toThrow(/others may write in .*d\d+ on its path \(mode 0777\)/);
    chmodSync(dir, 0o1777); // like /tmp: nobody may rename or remove root's file there
    expect(read(f)).toBe('hello\n');
    chmodSync(dir, 0o755);
    chownSync(dir, OTHER, 0);
    expect(() => read(f)).toThrow(/on its path belongs to uid 4242/);
  });

  it('checks where a symlink leads, not where it is', () => {
    const target = fileIn('theirs\n');
    chmodSync(join(target, '..'), 0o777);
    const link = join(top, `link${n++}`);
    symlinkSync(target, link);
    expect(() => read(link)).toThrow(/others may write in/);
    chmodSync(join(target, '..'), 0o755);
    expect(read(link)).toBe('theirs\n');
  });

  it('checks the path as named too: a directory on it others may write, a symlink of another user’s', () => {
    const target = fileIn('trusted\n'); // a trusted file in a trusted directory
    const open = join(top, `open${n++}`);
    mkdirSync(open);
    chmodSync(open, 0o777);
    symlinkSync(target, join(open, 'link'));
    // Anyone may replace open/link: where the name leads is theirs to choose.
    expect(() => read(join(open, 'link'))).toThrow(/others may write in .*open\d+ on its path \(mode 0777\)/);
    chmodSync(open, 0o1777); // sticky, like /tmp: a symlink there must be root's (or ours)
    expect(read(join(open, 'link'))).toBe('trusted\n');
    const theirs = join(open, 'theirs');
    symlinkSync(target, theirs);
    lchownSync(theirs, OTHER, 0);
    expect(() => read(theirs)).toThrow(/theirs on its path is a symlink of uid 4242/);
  });

  it('refuses what is not a regular file, a FIFO at once (it does not wait for a writer), and a file over the bound', () => {
    const fifo = join(join(fileIn(), '..'), 'fifo');
    execFileSync('mkfifo', ['-m', '0644', fifo]);
    // In a process of its own: a reader that blocked in open() would hang this one for good.
    const said = boundedScript(`import { readTrustedFile } from ${JSON.stringify(built('src/util/trusted-file.js'))};
      try { readTrustedFile(${JSON.stringify(fifo)}, 'test file', { maxBytes: 100 }); console.log('read it'); }
      catch (e) { console.log(e.code + ' ' + e.message); }`);
    expect(said).toMatch(/^FG_ERR_PERMISSION .*not a regular file/);
    expect(() => read('/dev/zero')).toThrow(/not a regular file/);
    expect(() => read(fileIn('x'.repeat(101)), { maxBytes: 100 })).toThrow(/over 100 bytes/);
    expect(read(fileIn('x'.repeat(100)), { maxBytes: 100 })).toHaveLength(100);
    expect(() => read(join(top, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('a secret file (password hashes) must not be readable by everyone; its group may', () => {
    const f = fileIn();
    expect(() => read(f, { secret: true })).toThrow(/everyone may read it \(mode 0644; chmod o-r\)/);
    chmodSync(f, 0o640);
    expect(read(f, { secret: true })).toBe('hello\n');
  });
});

describe('its users', () => {
  it('flowgrabd’s policy: one another user may write is refused, naming why', () => {
    const f = fileIn(JSON.stringify({ version: 1, principals: [] }), 'policy.json');
    expect(loadPolicy(f).principals).toEqual([]);
    chmodSync(f, 0o666);
    expect(() => loadPolicy(f)).toThrow(/policy .*policy\.json: others may write it \(mode 0666\)/);
    expect(() => loadPolicy(join(top, 'none.json'))).toThrow(/cannot read it \(ENOENT\)/);
  });

  it('SPIN’s --credentials: refused when everyone may read its hashes or others may write it', () => {
    const f = join(join(fileIn(), '..'), 'credentials');
    writeCredentials(f, 'admin', 'a password');
    expect(() => Credentials.load(f)).not.toThrow();
    chmodSync(f, 0o644);
    expect(() => Credentials.load(f)).toThrow(/credentials .*: everyone may read it/);
    chmodSync(f, 0o620);
    expect(() => Credentials.load(f)).toThrow(/others may write it/);
  });
});
