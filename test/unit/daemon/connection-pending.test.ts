/**
 * What one connection may make the daemon hold while its requests wait: frames count, and so do their bytes.
 * A request that waits on the kernel (an activate waiting for its source to capture) is made to wait here by
 * a source that captures when the test says.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Subject } from 'rxjs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { parsePolicy } from '../../../src/auth/load.js';
import { Client } from '../../../src/daemon/connection.js';
import type { DaemonHost } from '../../../src/daemon/host.js';
import { PENDING_BYTES, PENDING_FRAMES } from '../../../src/daemon/limits.js';
import { encodeFrame } from '../../../src/daemon/protocol.js';
import { ANY_FIELDS } from '../../../src/filters/fields.js';
import { type Rec, registerSource } from '../../../src/filters/registry.js';
import { until } from '../../helpers/wait.js';

let openGate!: () => void;
const capturing = new Promise<void>((r) => (openGate = r));
registerSource({
  name: 'pendgate',
  description: 'a test source that captures when the test opens its gate',
  params: z.object({}).strict(),
  fields: ANY_FIELDS,
  create: (_p, ctx) => {
    ctx.ready?.(capturing);
    return new Subject<Rec>();
  },
});

/** A socket that records what the connection does with it. */
class FakeSocket extends EventEmitter {
  destroyed = false;
  paused = false;
  writableLength = 0;
  replies: { id: unknown; ok: boolean; error?: { code: string } }[] = [];
  pause() {
    this.paused = true;
    return this;
  }
  resume() {
    this.paused = false;
    return this;
  }
  isPaused() {
    return this.paused;
  }
  write(b: Buffer | string) {
    const buf = Buffer.isBuffer(b) ? b : Buffer.from(b);
    for (let o = 0; o + 4 <= buf.length; o += 4 + buf.readUInt32BE(o))
      this.replies.push(JSON.parse(buf.subarray(o + 4, o + 4 + buf.readUInt32BE(o)).toString()));
    return true;
  }
  end() {
    return this;
  }
  destroy() {
    this.destroyed = true;
    return this;
  }
}

function host(partialFrameMs = 60_000): DaemonHost {
  const policy = parsePolicy(JSON.stringify({ version: 1, principals: [] })); // root may do anything
  return {
    stats: { badFrames: 0, timedOutConnections: 0, refusedConnections: 0 } as never,
    maxBacklog: 1 << 20,
    maxUserBacklog: 4 << 20,
    timeouts: { idleMs: 60_000, partialFrameMs, identifyMs: 60_000 } as never,
    clientList: [],
    policy: () => policy,
    authContext: () => ({ reservedQueues: [], anonymizeKey: 'k' }),
    log: () => {},
    flushSoon: (f) => setImmediate(f),
    flowsOf: () => 0,
    allFlowsOf: () => 0,
    sourcesOf: () => 0,
    unreadOf: () => 0,
    queueMux: () => {
      throw new Error('no queue');
    },
    status: () => ({}) as never,
    forget: () => {},
    noteNetns: () => {},
  };
}

const frame = (o: Record<string, unknown>) => encodeFrame({ v: 1, ...o } as never);
/** A frame of `size` bytes that is not JSON (refused at once when its turn comes). */
const junk = (size: number) => {
  const b = Buffer.alloc(size, 0x20);
  b.writeUInt32BE(size - 4, 0);
  return b;
};

const conns: Client[] = [];
afterAll(async () => {
  openGate();
  for (const c of conns) await c.shutdown('test over');
});

describe('a connection whose request waits', () => {
  it('stops reading once the frames waiting behind it reach PENDING_BYTES, and reads on when they are answered', async () => {
    const sock = new FakeSocket();
    const c = new Client(host(), sock as unknown as Socket, { uid: 0, gid: 0, pid: 1 } as never, 1);
    conns.push(c);
    sock.emit(
      'data',
      Buffer.concat([
        frame({ id: 1, op: 'create' }),
        frame({ id: 2, op: 'populate', flow: 1, graph: 'pendgate()' }),
        frame({ id: 3, op: 'instantiate', flow: 1 }),
        frame({ id: 4, op: 'activate', flow: 1 }),
      ]),
    );
    await until(() => sock.replies.length === 3, 'create, populate and instantiate answered');
    expect(sock.paused).toBe(false);
    // Frames of 256 KiB while the activate waits: far fewer than PENDING_FRAMES of them fill PENDING_BYTES.
    const size = 256 * 1024;
    let sent = 0;
    while (!sock.paused && sent < PENDING_FRAMES) {
      sock.emit('data', junk(size));
      sent++;
    }
    expect(sock.paused).toBe(true);
    expect(sent).toBe(PENDING_BYTES / size);
    expect(sent).toBeLessThan(PENDING_FRAMES);
    // The source captures: activate is answered, then every junk frame (refused), and reading goes on.
    openGate();
    await until(() => sock.replies.length === 4 + sent, 'every frame answered');
    expect(sock.replies[3]).toMatchObject({ id: 4, ok: true });
    expect(sock.replies.slice(4).every((r) => r.ok === false && r.error?.code === 'FG_ERR_PROTOCOL')).toBe(true);
    expect(sock.paused).toBe(false);
  });
});

describe('a client whose every write ends one frame and begins the next', () => {
  it('is not cut off: each frame gets the whole partial-frame time, counted from its own first byte', async () => {
    vi.useFakeTimers();
    try {
      const sock = new FakeSocket();
      const c = new Client(host(1500), sock as unknown as Socket, { uid: 0, gid: 0, pid: 1 } as never, 2);
      conns.push(c);
      // 12 hellos, each write finishing one and starting the next, 300 ms apart: 3.6 s with a frame always
      // begun, against a partial-frame bound of 1.5 s.
      let tail: Buffer = Buffer.alloc(0);
      for (let id = 1; id <= 12; id++) {
        const f = frame({ id, op: 'hello' });
        sock.emit('data', Buffer.concat([tail, f.subarray(0, f.length >> 1)]));
        tail = f.subarray(f.length >> 1);
        await vi.advanceTimersByTimeAsync(300);
      }
      expect(sock.replies.filter((r) => r.ok === false)).toEqual([]);
      expect(sock.replies.filter((r) => r.ok === true)).toHaveLength(11); // the 12th is still half sent
      expect(sock.destroyed).toBe(false);
      // A frame left half sent is still cut off, 1.5 s after its first byte.
      await vi.advanceTimersByTimeAsync(1300);
      expect(sock.replies.at(-1)).toMatchObject({ ok: false, error: { code: 'FG_ERR_TIMEOUT' } });
    } finally {
      vi.useRealTimers();
    }
  });
});
