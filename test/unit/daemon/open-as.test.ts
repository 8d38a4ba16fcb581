import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { REPLAY_READERS_PER_UID } from '../../../src/daemon/limits.js';
import { openAsPeer } from '../../../src/daemon/open-as.js';

// nobody: a uid with no rights over root's files (the reader really runs as it: setpriv).
const NOBODY = { uid: 65534, gid: 65534, pid: 0 };
const dir = mkdtempSync(join(tmpdir(), 'fg-openas-'));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function readAll(s: Readable): Promise<string> {
  let text = '';
  for await (const c of s) text += String(c);
  return text;
}

describe('openAsPeer', () => {
  it('reads what the client may read, and refuses what only root may, or what is not a regular file', async () => {
    const open = join(dir, 'open');
    writeFileSync(open, 'line one\nline two\n', { mode: 0o644 });
    expect(await readAll(openAsPeer(NOBODY, open))).toBe('line one\nline two\n');
    const secret = join(dir, 'secret');
    writeFileSync(secret, 'root only\n', { mode: 0o600 });
    await expect(readAll(openAsPeer(NOBODY, secret))).rejects.toMatchObject({
      code: 'FG_ERR_PERMISSION',
      message: `replay: ${secret}: EACCES`,
    });
    await expect(readAll(openAsPeer(NOBODY, '/dev/zero'))).rejects.toMatchObject({
      code: 'FG_ERR_INVALID_ARGUMENT',
      message: 'replay: /dev/zero: not a regular file',
    });
  });

  it(`runs at most ${REPLAY_READERS_PER_UID} readers per uid`, async () => {
    const big = join(dir, 'big');
    writeFileSync(big, Buffer.alloc(4 << 20, 0x61), { mode: 0o644 });
    // Not consumed: each reader blocks on its full pipe and stays.
    const held = Array.from({ length: REPLAY_READERS_PER_UID }, () => openAsPeer(NOBODY, big));
    for (const s of held) s.on('error', () => {});
    await expect(readAll(openAsPeer(NOBODY, big))).rejects.toMatchObject({
      code: 'FG_ERR_BUSY',
      message: `replay: you have ${REPLAY_READERS_PER_UID} replays reading; try again when one ends`,
    });
    const gone = new Promise((r) => held[0].once('close', r));
    held[0].destroy();
    await gone; // its reader slot is free once it has closed
    const again = openAsPeer(NOBODY, big);
    expect((await readAll(again)).length).toBe(4 << 20);
    for (const s of held) s.destroy();
  });
});
