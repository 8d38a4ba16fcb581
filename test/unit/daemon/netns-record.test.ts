/** The namespaces a daemon's clients' graphs name are kept in `<socket>.netns` for the next daemon to sweep. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_RECORDED_NETNS, NetnsRecord } from '../../../src/daemon/netns-record.js';
import { parseGraph } from '../../../src/filters/parser.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function file(): string {
  const d = mkdtempSync(join(tmpdir(), 'fg-netns-rec-'));
  dirs.push(d);
  return join(d, 'd.sock.netns');
}
const saved = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as string[];

describe('NetnsRecord', () => {
  it("records every namespace a graph's nodes name, once, and a new daemon reads them back", () => {
    const f = file();
    const r = new NetnsRecord(f);
    r.noteGraph(parseGraph('(dns(netns=lab-a) | conntrack(netns=lab-b)) -> merge() -> enrich()'));
    r.noteGraph(parseGraph('dns(netns=lab-a) -> match(kind == query)'));
    r.note('queue-ns');
    expect(saved(f).sort()).toEqual(['lab-a', 'lab-b', 'queue-ns']);
    const next = new NetnsRecord(f);
    next.note('lab-c');
    expect(saved(f).sort()).toEqual(['lab-a', 'lab-b', 'lab-c', 'queue-ns']);
  });

  it('keeps names only (no path tricks), at most MAX_RECORDED_NETNS, and reads a damaged file as empty', () => {
    const f = file();
    const r = new NetnsRecord(f);
    for (const bad of ['../etc', 'a/b', '', 'x'.repeat(65)]) r.note(bad);
    expect(() => readFileSync(f)).toThrow(); // nothing worth writing
    for (let i = 0; i < MAX_RECORDED_NETNS + 5; i++) r.note(`ns${i}`);
    const names = saved(f);
    expect(names).toHaveLength(MAX_RECORDED_NETNS);
    expect(names[0]).toBe('ns5'); // the oldest forgotten
    writeFileSync(f, '{"not":"a list"');
    expect(new NetnsRecord(f).existing()).toEqual([]);
    writeFileSync(f, JSON.stringify(['../../etc', 'ok-name']));
    new NetnsRecord(f).note('another');
    expect(saved(f)).toEqual(['ok-name', 'another']);
  });
});
