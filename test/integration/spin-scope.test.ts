// Limiting what the SPIN example watches (SIDN/spin #83, #88): only the
// subnets of a router interface, or only given prefixes; and nodeInfo
// messages that carry at most NODE_INFO_MAX_IPS addresses of a node with
// many, the rest through get_device_data.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpinApp, type SpinOptions, startSpin } from '../../examples/spin/app.js';
import { NODE_INFO_MAX_IPS } from '../../examples/spin/domain/messages.js';
import type { SpinMessage } from '../../examples/spin/io/contract.js';
import { createHomeNetwork, generateTraffic, type HomeNetwork, waitFor } from '../../src/testing/index.js';
import { socketRpc, socketRpcRaw } from '../helpers/spin-core.js';

let home: HomeNetwork;
const dir = mkdtempSync(join(tmpdir(), 'spin-scope-'));
const sock = join(dir, 'rpc.sock');

beforeAll(async () => {
  home = await createHomeNetwork();
});
afterAll(async () => {
  await home?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function withApp(extra: Partial<SpinOptions>, body: (app: SpinApp) => Promise<void>): Promise<void> {
  const app = await startSpin({
    netns: home.router.name,
    httpPort: 0,
    mqtt: false,
    rpcSocket: sock,
    stateDir: mkdtempSync(join(dir, 'state-')),
    credentialsFile: false,
    periods: { trafficMs: 250 },
    ...extra,
  });
  try {
    await body(app);
  } finally {
    await app.close();
  }
}

const deviceMacs = async () =>
  ((await socketRpc(sock, 'list_devices')).result as { mac: string }[]).map((d) => d.mac).sort();

describe('monitoring scope', () => {
  it('--monitor-iface br0: the LAN clients are devices, the WAN server is not', async () => {
    await withApp({ monitorInterfaces: [home.routerLan.bridge] }, async () => {
      await generateTraffic(home, { rounds: 1, ipv6: false });
      const lan = home.clients.map((c) => c.mac).sort();
      await waitFor(async () => (await deviceMacs()).length >= lan.length, { timeoutMs: 10_000 });
      const devices = (await socketRpc(sock, 'list_devices')).result;
      expect(await deviceMacs(), JSON.stringify(devices)).toEqual(lan);
    });
  });

  it('--monitor 192.168.77.11/32: only the laptop', async () => {
    await withApp({ monitorPrefixes: [`${home.clients[0].ipv4}/32`] }, async () => {
      await generateTraffic(home, { rounds: 1, ipv6: false });
      await waitFor(async () => (await deviceMacs()).length >= 1, { timeoutMs: 10_000 });
      await generateTraffic(home, { rounds: 1, ipv6: false });
      expect(await deviceMacs()).toEqual([home.clients[0].mac]);
    });
  });

  it('rejects a bad prefix or an unknown interface at start', async () => {
    await expect(withApp({ monitorPrefixes: ['10.0.0.0/99'] }, async () => {})).rejects.toThrow(/not a prefix/);
    await expect(withApp({ monitorInterfaces: ['nosuch0'] }, async () => {})).rejects.toThrow(/no interface nosuch0/);
  });
});

describe('nodeInfo of a node with many addresses', () => {
  it(`carries ${NODE_INFO_MAX_IPS} of them and ips_total; get_device_data has them all`, async () => {
    const messages: SpinMessage[] = [];
    await withApp({ tap: (m) => messages.push(m) }, async () => {
      await socketRpc(sock, 'node_add_ip', { node: 0, ipaddr: '203.0.113.1' });
      const info = () =>
        messages
          .filter((m) => m.payload.includes('"203.0.113.1"'))
          .map((m) => JSON.parse(m.payload).result as { id: number; ips: string[]; ips_total?: number });
      await waitFor(() => info().length > 0, { timeoutMs: 5000 });
      const id = info()[0].id;
      const batch = Array.from({ length: 99 }, (_, i) => ({
        jsonrpc: '2.0',
        id: i,
        method: 'node_add_ip',
        params: { node: id, ipaddr: `203.0.113.${i + 2}` },
      }));
      await socketRpcRaw(sock, JSON.stringify(batch));
      const full = (await socketRpc(sock, 'get_device_data', { node: id })).result as { ips: string[] };
      expect(full.ips).toHaveLength(100);
      const last = info().at(-1);
      expect(last?.ips).toHaveLength(NODE_INFO_MAX_IPS);
      expect(last?.ips_total).toBe(100);
      expect(info().every((m) => m.ips.length <= NODE_INFO_MAX_IPS)).toBe(true);
    });
  });
});
