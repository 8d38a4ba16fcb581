/**
 * A small stand-in for the SPIN example's core (examples/spin/contract.ts):
 * a Subject of messages in SPIN's wire format and a canned JSON-RPC handler
 * that records what it was asked. Tests of the MQTT bridge and the web view
 * use it to check the carrying, independent of aggregation.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Subject } from 'rxjs';
import type { SpinCore, SpinMessage, WebHandler } from '../../examples/spin/io/contract.js';

export interface FakeNode {
  id: number;
  name?: string;
  mac?: string;
  is_blocked?: true;
  lastseen: number;
  ips: string[];
  domains: string[];
}

export const FAKE_NODES: FakeNode[] = [
  { id: 1, name: 'laptop', mac: '02:00:00:00:77:11', lastseen: 1_700_000_000, ips: ['192.168.77.11'], domains: [] },
  { id: 2, mac: '02:00:00:00:77:12', lastseen: 1_700_000_000, ips: ['192.168.77.12'], domains: [] },
  { id: 3, name: 'tv', mac: '02:00:00:00:77:13', lastseen: 1_700_000_000, ips: ['192.168.77.13'], domains: [] },
  {
    id: 4,
    lastseen: 1_700_000_000,
    ips: ['198.51.100.10', '2001:db8:77::10'],
    domains: ['cdn.shop.test.', 'www.shop.test.'],
  },
];

export class FakeSpinCore implements SpinCore {
  readonly messages = new Subject<SpinMessage>();
  readonly messages$ = this.messages.asObservable();
  readonly requests: unknown[] = [];
  readonly nodes = new Map(FAKE_NODES.map((n) => [n.id, structuredClone(n)]));
  readonly lists: Record<'block' | 'allow' | 'ignore', string[]> = { block: [], allow: [], ignore: [] };
  readonly flowBlocks = new Set<string>();
  startups = 0;

  startupMessages(): SpinMessage[] {
    this.startups++;
    return [
      spin('SPIN/traffic', { command: 'serverRestart' }),
      ...(['block', 'ignore', 'allow'] as const).map((l) =>
        spin('SPIN/traffic', { command: l, result: this.lists[l] }),
      ),
      ...[...this.nodes.values()].map((n) => this.nodeInfo(n)),
    ];
  }

  nodeInfo(node: FakeNode): SpinMessage {
    return spin(`SPIN/traffic/node/${node.id}`, { command: 'nodeInfo', result: node }, true);
  }

  /** One `traffic` message: laptop (1) → server (4) on 7007. */
  emitTraffic(size = 1200, count = 10): void {
    const flows = [{ from: 1, to: 4, protocol: 6, from_port: 40_000, to_port: 7007, size, count }];
    const result = { flows, timestamp: Math.floor(Date.now() / 1000), total_size: size, total_count: count };
    this.messages.next(spin('SPIN/traffic', { command: 'traffic', argument: '', result }));
  }

  readonly handleRpc = async (request: unknown): Promise<unknown> => {
    this.requests.push(request);
    const r = request as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: Record<string, unknown> };
    const id = r.id;
    const ok = (result?: unknown) =>
      id === undefined ? result : { jsonrpc: '2.0', id, ...(result === undefined ? {} : { result }) };
    const fail = (code: number, message: string) => ({
      jsonrpc: '2.0',
      ...(id === undefined ? {} : { id }),
      error: { code, message },
    });
    if (r.jsonrpc !== '2.0') return fail(1, 'Wrong JSON-RPC version, expected 2.0');
    const p = r.params ?? {};
    switch (r.method) {
      case 'list_devices':
        return ok([...this.nodes.values()].filter((n) => n.mac));
      case 'get_device_data': {
        const node = this.nodes.get(p.node as number);
        return node ? ok(node) : fail(-1, 'Unknown node id');
      }
      case 'list_device_flows': {
        if (![...this.nodes.values()].some((n) => n.mac === p.device)) return fail(-1, 'Device not found');
        const blocked = this.flowBlocks.has(`${p.device}/4`);
        return ok([
          blocked
            ? { to: 4, dst_port: 7007, icmp_type: 0, blocked: 1 }
            : { to: 4, dst_port: 7007, icmp_type: 0, packets: 10, bytes: 1200, lastseen: 1_700_000_000 },
        ]);
      }
      case 'list_iplist':
        return ok(this.lists[p.list as 'block']);
      case 'set_device_flow_block': {
        const key = `${p.device}/${p.node}`;
        if (p.block) this.flowBlocks.add(key);
        else this.flowBlocks.delete(key);
        return ok();
      }
      case 'add_iplist_node':
      case 'remove_iplist_node': {
        const node = this.nodes.get(p.node as number);
        if (!node) return fail(-2, 'Unknown node id');
        const list = this.lists[p.list as 'block'];
        for (const ip of node.ips) {
          const at = list.indexOf(ip);
          if (r.method === 'add_iplist_node' && at < 0) list.push(ip);
          if (r.method === 'remove_iplist_node' && at >= 0) list.splice(at, 1);
        }
        this.messages.next(spin('SPIN/traffic', { command: p.list, result: list }));
        return ok();
      }
      default:
        return fail(-1, 'No such function registered');
    }
  };
}

export function spin(topic: string, body: unknown, retain = false): SpinMessage {
  return { topic, payload: JSON.stringify(body), retain };
}

/**
 * An HTTP server shaped like the app's: `POST /spin_api/jsonrpc` answered by
 * the core, everything else offered to the web handler, else 404.
 */
export async function serveSpinHttp(
  core: SpinCore,
  web: WebHandler,
  host = '127.0.0.1',
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/spin_api/jsonrpc') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        let reply: unknown;
        try {
          reply = await core.handleRpc(JSON.parse(Buffer.concat(chunks).toString()));
        } catch {
          reply = { jsonrpc: '2.0', error: { code: 1, message: 'Wrong JSON-RPC version, expected 2.0' } };
        }
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(reply === undefined ? '' : JSON.stringify(reply));
      });
      return;
    }
    if (!web(req, res)) res.writeHead(404).end('not found\n');
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
