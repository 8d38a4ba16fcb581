import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../../../src/daemon/client.js';
import {
  ErrorBody,
  encodeFrame,
  errorBody,
  FrameReader,
  frameParts,
  frameText,
  PROTOCOL_VERSION,
  parseServerFrame,
} from '../../../src/daemon/protocol.js';
import { FlowgrabError } from '../../../src/errors.js';
import { graph } from '../../../src/filters/builder.js';
import { GraphError } from '../../../src/filters/errors.js';

const frame = (msg: unknown) => encodeFrame(msg).subarray(4);
const protocolError = (what: RegExp) =>
  expect.objectContaining({ name: 'FlowgrabError', code: 'FG_ERR_PROTOCOL', message: expect.stringMatching(what) });

describe('daemon protocol: what the client accepts', () => {
  it('a well-formed reply and event parse; malformed ones are FG_ERR_PROTOCOL FlowgrabErrors naming the field', () => {
    const ok = { v: PROTOCOL_VERSION, id: 3, ok: true, flow: 1 };
    expect(parseServerFrame(frame(ok))).toEqual({ reply: ok });
    const ev = { v: PROTOCOL_VERSION, ev: 'closed', flow: 2, reason: 'policy' };
    expect(parseServerFrame(frame(ev))).toEqual({ event: ev });
    const bad: [unknown, RegExp][] = [
      [{ v: 2, id: 1, ok: true }, /malformed reply: v: /],
      [{ v: PROTOCOL_VERSION, id: 'x', ok: true }, /malformed reply: id: /],
      [{ v: PROTOCOL_VERSION, id: 1, ok: false, error: { code: 'EWHATEVER', message: 'm' } }, /error\.code/],
      [{ v: PROTOCOL_VERSION, ev: 'records', flow: 1, records: 'no' }, /malformed event: records: /],
      [{ v: PROTOCOL_VERSION, ev: 'lost', flow: 1, notice: { kind: 'loss' } }, /malformed event: notice\./],
      [{ v: PROTOCOL_VERSION, ev: 'teleport', flow: 1 }, /malformed event: ev: /],
      [{ v: PROTOCOL_VERSION, ev: 'packets', queue: -1, packets: [] }, /malformed event: queue: /],
    ];
    for (const [msg, why] of bad) {
      let err: unknown;
      try {
        parseServerFrame(frame(msg));
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(msg)).toBeInstanceOf(FlowgrabError);
      expect(err, JSON.stringify(msg)).toEqual(protocolError(why));
    }
    expect(() => parseServerFrame(Buffer.from('{nope'))).toThrow(protocolError(/not JSON/));
  });

  it('error bodies carry only ErrorCodes: anything else thrown is FG_ERR_INTERNAL, with its message', () => {
    expect(errorBody(new FlowgrabError('FG_ERR_DENIED', 'no'))).toEqual({ code: 'FG_ERR_DENIED', message: 'no' });
    expect(errorBody(Object.assign(new Error('boom'), { code: 'ENOENT' }))).toEqual({
      code: 'FG_ERR_INTERNAL',
      message: 'boom',
    });
    expect(errorBody('text')).toEqual({ code: 'FG_ERR_INTERNAL', message: 'text' });
    const g = errorBody(new GraphError([{ code: 'x', path: ['root', 1], message: 'bad' }]));
    expect(g).toEqual({
      code: 'FG_ERR_GRAPH',
      message: 'graph: bad',
      issues: [{ code: 'x', path: ['root', 1], message: 'bad' }],
    });
    expect(ErrorBody.safeParse(g).success).toBe(true);
  });
});

/** A fake flowgrabd that answers hello, then replies to each request with what `answer` gives. */
let dir: string | undefined;
let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function fakeDaemon(answer: (req: { id: number; op: string }, sock: Socket) => void): Promise<string> {
  dir = mkdtempSync(join(tmpdir(), 'fg-proto-'));
  const path = join(dir, 'd.sock');
  server = createServer((sock) => {
    const reader = new FrameReader();
    sock.on('data', (d) => {
      for (const f of reader.push(d)) {
        const req = JSON.parse(f.toString('utf8'));
        if (req.op === 'hello')
          sock.write(encodeFrame({ v: PROTOCOL_VERSION, id: req.id, ok: true, identity: { uid: 0, gid: 0 } }));
        else answer(req, sock);
      }
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server?.listen(path, r));
  return path;
}

describe('daemon protocol: record frames built from a shared body', () => {
  it('frameParts is frameText of the joined text, non-ASCII included, and parses as a records event', () => {
    const body = Buffer.from('{"a":"é"},{"b":"\\u0000"},2', 'utf8');
    const head = `{"v":${PROTOCOL_VERSION},"ev":"records","flow":7,"records":[`;
    const tail = ']}';
    const whole = frameParts(head, body, tail);
    expect(whole.equals(frameText(head + body.toString('utf8') + tail))).toBe(true);
    const got = parseServerFrame(whole.subarray(4));
    expect(got.event).toEqual({
      v: PROTOCOL_VERSION,
      ev: 'records',
      flow: 7,
      records: [{ a: 'é' }, { b: '\u0000' }, 2],
    });
  });
});

describe('daemon client: populate', () => {
  it('text extends a built graph as on a local handle; a GraphSpec is whole', async () => {
    const sent: string[] = [];
    const path = await fakeDaemon((req, sock) => {
      const r = req as { id: number; op: string; graph?: unknown };
      if (r.op === 'populate') sent.push(String(r.graph));
      sock.write(encodeFrame({ v: PROTOCOL_VERSION, id: r.id, ok: true, ...(r.op === 'create' ? { flow: 3 } : {}) }));
    });
    const c = await connect(path);
    try {
      const built = graph.source('replay', { file: 'x' }).match('proto == tcp');
      await c.create().populate(built).populate('-> count(by=orig.src, every=1m)').instantiate();
      expect(sent).toEqual([`${built}\n-> count(by=orig.src, every=1m)`]);
      // A spec was sent whole and the text after it dropped without a word; now both refuse, as locally.
      expect(() => c.create().populate(built.toSpec()).populate('-> count(by=orig.src, every=1m)')).toThrow(
        /text cannot extend it/,
      );
      expect(() => c.create().populate('replay(file=x)').populate(built)).toThrow(/fresh flow/);
    } finally {
      await c.close();
    }
  });
});

describe('daemon client: a daemon that breaks the protocol', () => {
  it('a malformed reply rejects the request with a typed error and closes the connection', async () => {
    const path = await fakeDaemon((req, sock) =>
      sock.write(encodeFrame({ v: PROTOCOL_VERSION, id: req.id, ok: false, error: { code: 42, message: 'x' } })),
    );
    const c = await connect(path);
    await expect(c.status()).rejects.toEqual(protocolError(/malformed reply: error\.code/));
    // Nothing after a bad frame is trusted: the next request fails too (the connection is gone).
    await expect(c.status()).rejects.toMatchObject({ code: 'FG_ERR_CLOSED' });
    await c.close();
  });

  it('a malformed event ends the flow it was for with a typed error', async () => {
    const path = await fakeDaemon((req, sock) => {
      const reply = (extra: Record<string, unknown>) =>
        sock.write(encodeFrame({ v: PROTOCOL_VERSION, id: req.id, ok: true, ...extra }));
      if (req.op === 'create') return reply({ flow: 7 });
      if (req.op === 'instantiate') return reply({ graph: 'replay(file=x)' });
      if (req.op === 'activate') {
        reply({ state: 'active' });
        // Records with a flow id that is not a number: the client must not guess whose they are.
        sock.write(encodeFrame({ v: PROTOCOL_VERSION, ev: 'records', flow: '7', records: [{ a: 1 }] }));
        return;
      }
      reply({});
    });
    const c = await connect(path);
    const f = c.create().populate('replay(file=x)');
    await f.instantiate();
    const ended = new Promise<unknown>((resolve) => f.records$.subscribe({ next: resolve, error: resolve }));
    await f.activate();
    expect(await ended).toEqual(protocolError(/malformed event: flow: /));
    expect(f.state).toBe('closed');
    await c.close();
  });
});
