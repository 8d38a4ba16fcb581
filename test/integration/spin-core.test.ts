/**
 * The SPIN example's core on the lab home network: devices and flows over
 * the Unix socket and HTTP, spind's error codes for every method, blocks by
 * device flow, by node and by DNS name (enforced in the kernel, undone by
 * unblocking), and no rules left after a clean stop.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SpinApp } from '../../examples/spin/app.js';
import type { Core } from '../../examples/spin/core.js';
import type { SpinMessage } from '../../examples/spin/io/contract.js';
import { generateTraffic, type HomeNetwork, waitFor } from '../../src/testing/index.js';
import {
  type Device,
  type DeviceFlow,
  httpRpc,
  httpRpcRaw,
  type SpinLab,
  socketRpc,
  socketRpcRaw,
  startSpinLab,
  tcpWorks,
} from '../helpers/spin-core.js';

let home: HomeNetwork;
let app: SpinApp;
let sock: string;
let lab: SpinLab;
const messages: SpinMessage[] = [];

const tables = async () => (await home.router.exec(['nft', 'list', 'tables'])).stdout;

beforeAll(async () => {
  // Every message from the start: nodeInfo published while the app starts counts for the order check.
  lab = await startSpinLab('spin-core', (h) => ({
    leaseFile: h.leaseFile,
    periods: { trafficMs: 250 },
    tap: (m) => messages.push(m),
  }));
  ({ home, app, sock } = lab);
  const t = await generateTraffic(home, { rounds: 1 });
  expect(t.failures).toEqual([]);
  await waitFor(async () => ((await socketRpc(sock, 'list_devices')).result as Device[]).length >= 4, {
    timeoutMs: 5000,
  });
  // Counters come from the next conntrack poll and the next traffic tick: on a loaded machine these lag the devices.
  await waitFor(
    async () => {
      const flows = (await socketRpc(sock, 'list_device_flows', { device: home.clients[0].mac }))
        .result as DeviceFlow[];
      return (
        flows.some((f) => f.dst_port === home.server.tcpPort && (f.packets ?? 0) > 0) &&
        messages.some((m) => m.payload.includes('"command":"traffic"'))
      );
    },
    { timeoutMs: 15_000, what: "the laptop's counted flows and a traffic message" },
  ).catch(async (err) => {
    // Say what the core saw: the laptop's flows, its counters and the deltas still waiting for a MAC.
    const flows = await socketRpc(sock, 'list_device_flows', { device: home.clients[0].mac });
    const core = app.core as Core;
    const state = { flows: flows.result, counters: core.counters, pending: core.pending.counters };
    throw new Error(`${(err as Error).message}; ${JSON.stringify(state)}`);
  });
});

afterAll(() => lab?.close());

async function devices(): Promise<Device[]> {
  return (await socketRpc(sock, 'list_devices')).result as Device[];
}
async function deviceOf(mac: string): Promise<Device> {
  const d = (await devices()).find((x) => x.mac === mac);
  if (!d) throw new Error(`no device ${mac}`);
  return d;
}
async function serverNode(): Promise<Device> {
  const d = (await devices()).find((x) => x.ips.includes(home.server.ipv4));
  if (!d) throw new Error('no server node');
  return d;
}

describe('devices and flows', () => {
  it('list_devices (Unix socket) and get_devices (HTTP, params "") show the three clients with MACs, IPs and domains', async () => {
    const list = await devices();
    const http = (await httpRpc(app.httpUrl, 'get_devices', '')).result as Device[];
    for (const c of home.clients) {
      const d = list.find((x) => x.mac === c.mac);
      expect(d, c.name).toBeDefined();
      expect(d!.ips).toEqual(expect.arrayContaining([c.ipv4, c.ipv6]));
      expect(d!.ips.indexOf(c.ipv4)).toBe(0); // IPv4 before IPv6
      expect(d!.domains).toContain(`${c.fqdn}.`);
      const g = http.find((x) => x.mac === c.mac)!;
      // The seed's shape: `name` always there, "" while unknown (list_devices omits it then).
      expect(Object.keys(g)).toEqual(['id', 'name', 'mac', 'lastseen', 'ips', 'domains']);
      expect(g).toEqual({
        id: d!.id,
        name: d!.name ?? '',
        mac: c.mac,
        lastseen: d!.lastseen,
        ips: d!.ips,
        domains: d!.domains,
      });
    }
    // Ordered by MAC; the router (ignored by default) is not among them.
    expect(list.map((d) => d.mac)).toEqual([...list.map((d) => d.mac)].sort());
    expect(list.some((d) => d.ips.includes(home.routerLan.ipv4))).toBe(false);
    // The server node merged its addresses and every name that led to them.
    const s = await serverNode();
    expect(s.ips).toEqual(expect.arrayContaining([home.server.ipv4, home.server.ipv6]));
    expect(s.domains).toEqual(expect.arrayContaining(['www.shop.test.', 'server.wan.test.']));
  });

  it('list_device_flows / get_deviceflow show the peers with growing counters', async () => {
    const laptop = home.clients[0];
    const server = await serverNode();
    const before = (await socketRpc(sock, 'list_device_flows', { device: laptop.mac })).result as DeviceFlow[];
    const tcp = before.find((f) => f.to === server.id && f.dst_port === home.server.tcpPort);
    expect(tcp).toBeDefined();
    expect(tcp!.packets).toBeGreaterThan(0);
    expect(before.find((f) => f.to === server.id && f.icmp_type === 8)).toBeDefined(); // ping
    await generateTraffic(home, { rounds: 1, ipv6: false });
    await waitFor(
      async () => {
        const now = (await httpRpc(app.httpUrl, 'get_deviceflow', { device: laptop.mac })).result as DeviceFlow[];
        const t = now.find((f) => f.to === server.id && f.dst_port === home.server.tcpPort);
        return !!t && t.packets! > tcp!.packets! && t.bytes! > tcp!.bytes!;
      },
      { timeoutMs: 4000, what: 'growing counters' },
    );
  });

  it('publishes traffic with nodeInfo of both ends before it, and dnsquery messages', () => {
    const seen = new Set<number>();
    let traffic = 0;
    for (const m of messages) {
      const body = JSON.parse(m.payload || '{}');
      if (body.command === 'nodeInfo') seen.add(body.result.id);
      if (body.command === 'traffic') {
        traffic++;
        for (const f of body.result.flows) {
          expect(seen.has(f.from) && seen.has(f.to), `traffic flow ${JSON.stringify(f)}`).toBe(true);
        }
      }
      if (body.command === 'dnsquery') {
        const ids = [body.result.from, body.result.queriednode];
        expect(
          ids.every((id) => seen.has(id)),
          `dnsquery ${m.payload}`,
        ).toBe(true);
        expect(body.result.query.endsWith('.')).toBe(true);
      }
    }
    expect(traffic).toBeGreaterThan(0);
    expect(messages.some((m) => m.payload.includes('"dnsquery"') && m.payload.includes('www.shop.test.'))).toBe(true);
  });
});

describe("spind's errors", () => {
  const cases: [string, unknown, number, string][] = [
    ['jsonrpc missing', { id: 1, method: 'list_devices' }, 1, 'Wrong JSON-RPC version, expected 2.0'],
    ['method not a string', { jsonrpc: '2.0', id: 1, method: 5 }, 2, "'method' object must be a string"],
    [
      'params an array',
      { jsonrpc: '2.0', id: 1, method: 'get_device_data', params: [1] },
      3,
      "'params' object must be a dict",
    ],
    [
      'params ""',
      { jsonrpc: '2.0', id: 1, method: 'get_device_data', params: '' },
      3,
      "'params' object must be a dict",
    ],
    ['unknown method', { jsonrpc: '2.0', id: 1, method: 'get_profile' }, -1, 'No such function registered'],
    [
      'missing param',
      { jsonrpc: '2.0', id: 1, method: 'get_device_data', params: {} },
      -1,
      'Wrong number of arguments',
    ],
    [
      'unknown param',
      { jsonrpc: '2.0', id: 1, method: 'get_device_data', params: { nod: 1 } },
      -1,
      'No such argument registered',
    ],
    [
      'bool for int',
      { jsonrpc: '2.0', id: 1, method: 'set_flow_block', params: { node1: 1, node2: 2, block: true } },
      -1,
      'Wrong type of argument',
    ],
    [
      'unknown node',
      { jsonrpc: '2.0', id: 1, method: 'get_device_data', params: { node: 999_999 } },
      -1,
      'Unknown node id',
    ],
    [
      'set_device_name unknown',
      { jsonrpc: '2.0', id: 1, method: 'set_device_name', params: { node: 999_999, name: 'x' } },
      -1,
      'Unknown node id',
    ],
    [
      'flows of no device',
      { jsonrpc: '2.0', id: 1, method: 'list_device_flows', params: { device: '02:00:00:00:00:99' } },
      -1,
      'Device not found',
    ],
    [
      'devflow block no device',
      { jsonrpc: '2.0', id: 1, method: 'set_device_flow_block', params: { device: 'zz', node: 1, block: 1 } },
      -1,
      'Device not found',
    ],
    [
      'node_add_ip bad ip',
      { jsonrpc: '2.0', id: 1, method: 'node_add_ip', params: { node: 0, ipaddr: '300.1.1.1' } },
      -1,
      'Not a valid IP address',
    ],
    [
      'node_add_ip taken',
      { jsonrpc: '2.0', id: 1, method: 'node_add_ip', params: { node: 0, ipaddr: '192.168.77.11' } },
      -1,
      'IP address already assigned to a node',
    ],
    [
      'node_add_ip no node',
      { jsonrpc: '2.0', id: 1, method: 'node_add_ip', params: { node: 999_999, ipaddr: '192.0.2.77' } },
      -1,
      'Unknown node id',
    ],
    [
      'bad list',
      { jsonrpc: '2.0', id: 1, method: 'add_iplist_node', params: { list: 'blocks', node: 1 } },
      -1,
      "Unknown ip list name, should be 'ignore', 'block', or 'allow'",
    ],
    [
      'list node unknown',
      { jsonrpc: '2.0', id: 1, method: 'add_iplist_node', params: { list: 'block', node: 999_999 } },
      -2,
      'Unknown node id',
    ],
    [
      'remove node unknown',
      { jsonrpc: '2.0', id: 1, method: 'remove_iplist_node', params: { list: 'allow', node: 999_999 } },
      -2,
      'Unknown node id',
    ],
    [
      'bad ip for list',
      { jsonrpc: '2.0', id: 1, method: 'add_iplist_ip', params: { list: 'block', ip: 'not an ip!' } },
      -1,
      'Invalid IP address',
    ],
    [
      'remove bad ip',
      { jsonrpc: '2.0', id: 1, method: 'remove_iplist_ip', params: { list: 'ignore', ip: '1.2.3' } },
      -1,
      'Invalid IP address',
    ],
    [
      'list_iplist bad list',
      { jsonrpc: '2.0', id: 1, method: 'list_iplist', params: { list: 'x' } },
      -1,
      "Unknown ip list name, should be 'ignore', 'block', or 'allow'",
    ],
    [
      'dots off',
      { jsonrpc: '2.0', id: 1, method: 'dots_signal', params: { dots_signal: {} } },
      1,
      'DOTS support is not enabled in spind.conf',
    ],
    [
      'get_deviceflow no device',
      { jsonrpc: '2.0', id: 1, method: 'get_deviceflow', params: { device: 'aa' } },
      -1,
      'Device not found',
    ],
  ];
  it.each(cases)('%s', async (_name, req, code, message) => {
    const reply = JSON.parse(await socketRpcRaw(sock, JSON.stringify(req)));
    expect(reply).toEqual({ jsonrpc: '2.0', id: 1, error: { code, message } });
  });

  it('unparseable JSON gets code 1 without an id, over both transports', async () => {
    const want = { jsonrpc: '2.0', error: { code: 1, message: 'Wrong JSON-RPC version, expected 2.0' } };
    expect(JSON.parse(await socketRpcRaw(sock, '{"jsonrpc": nope'))).toEqual(want);
    const h = await httpRpcRaw(app.httpUrl, '{{');
    expect(h.status).toBe(200);
    expect(JSON.parse(h.text)).toEqual(want);
  });

  it('void methods reply without result; notifications get the bare result; batches; 16 + 2 methods', async () => {
    const d = (await devices())[0];
    expect(await socketRpc(sock, 'set_device_name', { node: d.id, name: 'renamed' })).toEqual({
      jsonrpc: '2.0',
      id: expect.any(Number),
    });
    expect((await deviceOf(d.mac)).name).toBe('renamed');
    const bare = JSON.parse(
      await socketRpcRaw(sock, JSON.stringify({ jsonrpc: '2.0', method: 'list_iplist', params: { list: 'ignore' } })),
    );
    expect(bare).toEqual(expect.arrayContaining([home.routerLan.ipv4]));
    expect(await socketRpcRaw(sock, JSON.stringify({ jsonrpc: '2.0', method: 'reset_iplist_ignore' }))).toBe('');
    const batch = JSON.parse(
      (
        await httpRpcRaw(
          app.httpUrl,
          JSON.stringify([
            { jsonrpc: '2.0', id: 'a', method: 'get_flow_block' },
            { jsonrpc: '2.0', id: 'b', method: 'nope' },
          ]),
        )
      ).text,
    );
    expect(batch).toEqual([
      { jsonrpc: '2.0', id: 'a', result: [] },
      { jsonrpc: '2.0', id: 'b', error: { code: -1, message: 'No such function registered' } },
    ]);
    const methods = (await socketRpc(sock, 'list_rpc_methods')).result as { 'rpc-name': string }[];
    const names = methods.map((m) => m['rpc-name']);
    expect(names).toEqual([...names].sort());
    for (const n of [
      'list_devices',
      'get_device_data',
      'list_device_flows',
      'set_device_name',
      'node_add_ip',
      'set_flow_block',
      'set_device_flow_block',
      'get_flow_block',
      'add_iplist_node',
      'remove_iplist_node',
      'add_iplist_ip',
      'remove_iplist_ip',
      'list_iplist',
      'reset_iplist_ignore',
      'dots_signal',
      'list_rpc_methods',
      'get_devices',
      'get_deviceflow',
    ])
      expect(names).toContain(n);
    // A reply far beyond spinweb's 1024 bytes arrives whole.
    const big = await httpRpcRaw(app.httpUrl, JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'list_rpc_methods' }));
    expect(big.text.length).toBeGreaterThan(1024);
    expect(JSON.parse(big.text).result).toHaveLength(methods.length);
  });
});

describe('blocks', () => {
  it('set_device_flow_block cuts one client from the server at once; the others keep working; unblock restores', async () => {
    const [laptop, phone, tv] = home.clients;
    expect(await tcpWorks(home, laptop)).toBe(true);
    const server = await serverNode();
    const r = await socketRpc(sock, 'set_device_flow_block', { device: laptop.mac, node: server.id, block: 1 });
    expect(r.error).toBeUndefined();
    // "At once": the reply comes after the kernel has the block, so the very next connection fails (no timing assertion).
    expect(await tcpWorks(home, laptop)).toBe(false);
    expect(await tcpWorks(home, laptop, home.server.ipv6)).toBe(false);
    expect(await tcpWorks(home, phone)).toBe(true);
    expect(await tcpWorks(home, tv)).toBe(true);
    const dev = await deviceOf(laptop.mac);
    expect((await socketRpc(sock, 'get_flow_block')).result).toEqual([
      { node1: Math.min(dev.id, server.id), node2: Math.max(dev.id, server.id) },
    ]);
    const flows = (await socketRpc(sock, 'list_device_flows', { device: laptop.mac })).result as DeviceFlow[];
    expect(flows.filter((f) => f.to === server.id).every((f) => f.blocked === 1 && f.packets === undefined)).toBe(true);
    const blocked = () =>
      messages
        .filter((m) => m.payload !== '') // retained-clear messages have none
        .map((m) => JSON.parse(m.payload) as { command: string; result?: Record<string, number> })
        .filter((m) => m.command === 'blocked' && m.result?.from === dev.id)
        .map((m) => m.result!);
    await waitFor(() => blocked().some((b) => b.protocol === 6), { timeoutMs: 10_000, what: 'a blocked TCP message' });
    expect(blocked().find((b) => b.protocol === 6)).toMatchObject({ to: server.id, to_port: home.server.tcpPort });
    // A dropped ping is reported as protocol 0 without ports (docs/spin-protocol.md §2.4).
    await laptop.ns.exec(['ping', '-c', '1', '-W', '1', home.server.ipv4], { allowFail: true, timeoutMs: 3000 });
    await waitFor(() => blocked().some((b) => b.protocol === 0), { timeoutMs: 10_000, what: 'a blocked ICMP message' });
    expect(blocked().filter((b) => b.protocol === 0)).toContainEqual(
      expect.objectContaining({ from: dev.id, to: server.id, protocol: 0, from_port: 0, to_port: 0 }),
    );
    await socketRpc(sock, 'set_device_flow_block', { device: laptop.mac, node: server.id, block: 0 });
    expect(await tcpWorks(home, laptop)).toBe(true);
    expect((await socketRpc(sock, 'get_flow_block')).result).toEqual([]);
  });

  it('add_iplist_node block cuts that node; remove_iplist_node restores it', async () => {
    const [laptop, phone] = home.clients;
    const dev = await deviceOf(laptop.mac);
    await socketRpc(sock, 'add_iplist_node', { list: 'b', node: dev.id });
    const blocked = (await socketRpc(sock, 'list_iplist', { list: 'block' })).result as string[];
    expect(blocked).toEqual(expect.arrayContaining([laptop.ipv4, laptop.ipv6]));
    expect((await deviceOf(laptop.mac)).is_blocked).toBe(true);
    expect(messages.some((m) => m.payload.startsWith('{"command":"b","result":['))).toBe(true); // the caller's list string
    expect(await tcpWorks(home, laptop)).toBe(false);
    expect(await tcpWorks(home, phone)).toBe(true);
    await socketRpc(sock, 'remove_iplist_node', { list: 'block', node: dev.id });
    expect((await deviceOf(laptop.mac)).is_blocked).toBeUndefined();
    expect(await tcpWorks(home, laptop)).toBe(true);
  });

  it('a block by DNS name follows the answers: the name’s address is blocked until unlisted', async () => {
    const [laptop] = home.clients;
    await socketRpc(sock, 'remove_iplist_ip', { list: 'block', ip: 'www.shop.test' });
    expect(await tcpWorks(home, laptop)).toBe(true);
    await socketRpc(sock, 'add_iplist_ip', { list: 'block', ip: 'www.shop.test' });
    expect((await socketRpc(sock, 'list_iplist', { list: 'block' })).result).toContain('www.shop.test.');
    // A fresh lookup (the chain www.shop.test → cdn.shop.test → server.wan.test) refreshes the address's entry.
    await laptop.ns.exec(['dig', '+short', `@${home.routerLan.ipv4}`, 'www.shop.test', 'A']);
    // The answer reaches the app through its DNS source, then nft: wait for that fact.
    const nameSet = async () =>
      (await home.router.exec(['nft', 'list', 'set', 'inet', 'flowgrab_spin', 'bname4'])).stdout;
    await waitFor(async () => (await nameSet()).includes(home.server.ipv4), {
      timeoutMs: 10_000,
      what: "the name's address in the block set",
    });
    expect(await tcpWorks(home, laptop)).toBe(false);
    await socketRpc(sock, 'remove_iplist_ip', { list: 'block', ip: 'www.shop.test.' });
    expect(await tcpWorks(home, laptop)).toBe(true);
  });

  it('allow overrides block', async () => {
    const [laptop] = home.clients;
    await socketRpc(sock, 'add_iplist_ip', { list: 'block', ip: home.server.ipv4 });
    expect(await tcpWorks(home, laptop)).toBe(false);
    await socketRpc(sock, 'add_iplist_ip', { list: 'allow', ip: laptop.ipv4 });
    expect(await tcpWorks(home, laptop)).toBe(true);
    await socketRpc(sock, 'remove_iplist_ip', { list: 'allow', ip: laptop.ipv4 });
    await socketRpc(sock, 'remove_iplist_ip', { list: 'block', ip: home.server.ipv4 });
    expect(await tcpWorks(home, laptop)).toBe(true);
  });
});

describe('clean stop', () => {
  it('removes the firewall table and the socket', async () => {
    expect(await tables()).toContain('flowgrab_spin');
    await app.close();
    expect(await tables()).not.toContain('flowgrab_spin');
    await expect(socketRpc(sock, 'list_devices')).rejects.toThrow();
  });
});
