/**
 * What a record becomes on JetStream: its subject (from a template of
 * `{host}`, `{source}`, `{netns}`), its Nats-Msg-Id (stable for the record:
 * host, source, flow id, event and a hash of the JSON, so a retried publish
 * is stored once within the stream's duplicate window) and its JSON, which
 * is the line `flowgrab export --ndjson` writes for it.
 */
import { createHash } from 'node:crypto';
import { FlowgrabError } from '../../errors.js';

const PLACEHOLDER = /\{([a-z]+)\}/g;
const NAMES = new Set(['host', 'source', 'netns']);
/** A subject token: NATS separates tokens with `.` and reserves `*`, `>` and whitespace. */
const TOKEN = /^[A-Za-z0-9_-]+$/;
const MAX_SUBJECT = 256;

/** Makes a value one harmless subject token: a `.` or `>` in a host or namespace name must not add tokens or wildcards. */
export const token = (v: unknown): string =>
  v === undefined || v === null || v === ''
    ? '_'
    : String(v)
        .slice(0, 64)
        .replace(/[^A-Za-z0-9_-]/g, '_');

/** The flowgrab source a record came from, by its shape. */
export function recordSource(r: unknown): string {
  if (typeof r !== 'object' || r === null) return 'record';
  const o = r as Record<string, unknown>;
  if (o.type === 'flow' || (typeof o.orig === 'object' && typeof o.reply === 'object')) return 'conntrack';
  if ((o.kind === 'query' || o.kind === 'response') && 'qname' in o) return 'dns';
  if (typeof o.ifindex === 'number' && Array.isArray(o.state)) return 'arp';
  if (typeof o.ip === 'object' && 'payload' in o) return 'nfqueue';
  return 'record';
}

/**
 * A subject template checked once: tokens separated by `.`, each literal or
 * one of `{host}`, `{source}`, `{netns}` (wildcards are refused: a stream
 * stores concrete subjects).
 */
export function compileSubject(template: string, host: string): (r: unknown) => string {
  if (template.length === 0 || template.length > MAX_SUBJECT)
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `subject template must be 1..${MAX_SUBJECT} characters`);
  for (const t of template.split('.')) {
    const bare = t.replace(PLACEHOLDER, (_m, name: string) => {
      if (!NAMES.has(name))
        throw new FlowgrabError(
          'FG_ERR_INVALID_ARGUMENT',
          `subject template: unknown {${name}} (use {host}, {source}, {netns})`,
        );
      return 'x';
    });
    if (!TOKEN.test(bare))
      throw new FlowgrabError(
        'FG_ERR_INVALID_ARGUMENT',
        `subject template ${JSON.stringify(template)}: token ${JSON.stringify(t)} may hold only letters, digits, _ and - besides {host}, {source}, {netns}`,
      );
  }
  const h = token(host);
  return (r) =>
    template.replace(PLACEHOLDER, (_m, name: string) =>
      name === 'host' ? h : name === 'source' ? recordSource(r) : token((r as { netns?: unknown } | null)?.netns),
    );
}

/** The subjects a stream made for `template` takes in: its first literal token and everything below it. */
export function streamSubjects(template: string): string[] {
  const first = template.split('.')[0];
  return [`${first.includes('{') ? 'flowgrab' : first}.>`];
}

/** host/source/flow id/event/content hash: the same record always gets the same id, different records never share one. */
export function msgId(host: string, r: unknown, json: string): string {
  const o = (typeof r === 'object' && r !== null ? r : {}) as Record<string, unknown>;
  const id = typeof o.id === 'number' ? o.id : '-';
  const event = token(o.reason ?? o.type ?? o.kind ?? '-');
  const hash = createHash('sha256').update(json).digest('base64url').slice(0, 22);
  return `${token(host)}/${recordSource(r)}/${id}/${event}/${hash}`;
}

/** One spooled publish: `u16 subject length | subject | u16 id length | id | JSON`. */
export function encodeEntry(subject: string, id: string, json: string): Buffer {
  const s = Buffer.byteLength(subject);
  const i = Buffer.byteLength(id);
  const b = Buffer.allocUnsafe(4 + s + i + Buffer.byteLength(json));
  b.writeUInt16BE(s, 0);
  b.write(subject, 2);
  b.writeUInt16BE(i, 2 + s);
  b.write(id, 4 + s);
  b.write(json, 4 + s + i);
  return b;
}

export function decodeEntry(b: Buffer): { subject: string; id: string; data: Uint8Array } | undefined {
  if (b.length < 4) return undefined;
  const s = b.readUInt16BE(0);
  if (4 + s > b.length) return undefined;
  const i = b.readUInt16BE(2 + s);
  if (4 + s + i > b.length) return undefined;
  return {
    subject: b.toString('utf8', 2, 2 + s),
    id: b.toString('utf8', 4 + s, 4 + s + i),
    data: b.subarray(4 + s + i),
  };
}
