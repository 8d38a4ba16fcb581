/**
 * PCAP capture of one device (spinweb's "Capture PCAP"):
 * `GET /spin_api/capture?node=ID[&seconds=N]` (or `?device=MAC`, SPIN's own
 * link) streams a pcap file of the packets to and from that node's
 * addresses. An nft table of its own logs them to an NFLOG group
 * (input/forward/output, before the block rules, so blocked packets show),
 * read through flowgrab's NFLOG reader. Bounded in time (`seconds`, at most
 * MAX_SECONDS), in bytes (MAX_BYTES) and in captures at once (MAX_CAPTURES);
 * behind the same login as the RPC (the HTTP guard runs first).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { NflogReader, NftTable } from 'flowgrab';
import type { Core } from '../core.js';
import { ipFamilyOf } from '../domain/ip.js';
import type { WebHandler } from './contract.js';

export const CAPTURE_PATH = '/spin_api/capture';
export const CAPTURE_LIMITS = { defaultSeconds: 30, maxSeconds: 600, maxBytes: 64 << 20, maxCaptures: 4 } as const;
/** NFLOG groups used for captures: GROUP_BASE + slot. */
const GROUP_BASE = 4460;
const LINKTYPE_RAW = 101;
const SNAPLEN = 0xffff;

export interface CaptureOptions {
  netns?: string;
  /** nft table prefix (default `spin` → `inet flowgrab_spin_cap<slot>`). */
  tableName?: string;
  /**
   * Whether a request came from the app's own page or from no browser (HttpGuard.fromOwnPage): a capture is a
   * GET that installs a table and holds a slot, so another site's `<img>` must not start one.
   */
  fromOwnPage?: (req: IncomingMessage) => boolean;
}

export function pcapHeader(): Buffer {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(0xa1b2c3d4, 0);
  b.writeUInt16LE(2, 4);
  b.writeUInt16LE(4, 6);
  b.writeUInt32LE(SNAPLEN, 16);
  b.writeUInt32LE(LINKTYPE_RAW, 20);
  return b;
}

export function pcapRecord(tsMs: number, packet: Buffer): Buffer {
  const h = Buffer.alloc(16);
  const sec = Math.floor(tsMs / 1000);
  h.writeUInt32LE(sec >>> 0, 0);
  h.writeUInt32LE(Math.floor((tsMs - sec * 1000) * 1000), 4);
  h.writeUInt32LE(packet.length, 8);
  h.writeUInt32LE(packet.length, 12);
  return Buffer.concat([h, packet]);
}

/** The nft table logging a node's packets to `group` (exported for tests). */
export function captureBody(ips: string[], group: number): string {
  const v4 = ips.filter((ip) => ipFamilyOf(ip) === 4);
  const v6 = ips.filter((ip) => ipFamilyOf(ip) === 6);
  const rules: string[] = [];
  for (const [fam, list] of [
    ['ip', v4],
    ['ip6', v6],
  ] as const) {
    if (list.length === 0) continue;
    const set = `{ ${list.join(', ')} }`;
    rules.push(`${fam} saddr ${set} log group ${group}`, `${fam} daddr ${set} log group ${group}`);
  }
  return ['input', 'forward', 'output']
    .map(
      (hook) =>
        `  chain ${hook} { type filter hook ${hook} priority -10; policy accept;\n${rules.map((r) => `    ${r}`).join('\n')}\n  }`,
    )
    .join('\n');
}

export function createCaptureHandler(core: Core, opts: CaptureOptions = {}): WebHandler {
  const busy = new Set<number>();
  return (req, res) => {
    const u = new URL(req.url ?? '/', 'http://localhost');
    if (u.pathname !== CAPTURE_PATH) return false;
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET', 'content-type': 'text/plain' }).end('use GET\n');
      return true;
    }
    if (opts.fromOwnPage && !opts.fromOwnPage(req))
      return text(res, 403, 'a capture starts from the SPIN page (or a client that is not a browser)\n');
    const node = u.searchParams.has('device')
      ? core.model.ofMac((u.searchParams.get('device') ?? '').toLowerCase())
      : core.model.get(Number(u.searchParams.get('node')));
    const ips = node ? [...node.ips] : [];
    if (!node || ips.length === 0) return text(res, 404, 'no such node, or it has no address\n');
    const seconds = Number(u.searchParams.get('seconds') ?? CAPTURE_LIMITS.defaultSeconds);
    if (!Number.isFinite(seconds) || seconds <= 0 || seconds > CAPTURE_LIMITS.maxSeconds)
      return text(res, 400, `seconds: 1 to ${CAPTURE_LIMITS.maxSeconds}\n`);
    const slot = [...Array(CAPTURE_LIMITS.maxCaptures).keys()].find((s) => !busy.has(s));
    if (slot === undefined) return text(res, 503, 'too many captures running\n');
    busy.add(slot);
    capture(req, res, ips, node.id, seconds, slot, opts, (l) => core.log(l)).finally(() => busy.delete(slot));
    return true;
  };
}

async function capture(
  req: IncomingMessage,
  res: ServerResponse,
  ips: string[],
  id: number,
  seconds: number,
  slot: number,
  opts: CaptureOptions,
  log: (line: string) => void,
): Promise<void> {
  const group = GROUP_BASE + slot;
  let reader: NflogReader | undefined;
  let table: NftTable | undefined;
  let timer: NodeJS.Timeout | undefined;
  let bytes = 0;
  try {
    reader = await NflogReader.open({ group, netns: opts.netns });
    const done = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, seconds * 1000);
      req.socket.once('close', resolve);
      reader?.onPacket((p) => {
        const rec = pcapRecord(p.ts, p.payload);
        if (bytes + rec.length > CAPTURE_LIMITS.maxBytes) return resolve();
        bytes += rec.length;
        res.write(rec);
      });
    });
    res.writeHead(200, {
      'content-type': 'application/vnd.tcpdump.pcap',
      'content-disposition': `attachment; filename="spin-node-${id}.pcap"`,
      'cache-control': 'no-store',
    });
    res.write(pcapHeader());
    table = await NftTable.install({
      family: 'inet',
      name: `${opts.tableName ?? 'spin'}_cap${slot}`,
      body: captureBody(ips, group),
      netns: opts.netns,
    });
    await done;
  } catch (err) {
    log(`capture of node ${id}: ${(err as Error).message}`);
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
  } finally {
    clearTimeout(timer);
    await table?.remove().catch((err) => log(`capture table: ${(err as Error).message}`));
    reader?.close();
    res.end();
  }
}

function text(res: ServerResponse, status: number, body: string): true {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
  return true;
}
