/**
 * The SPIN example in the two set-ups spin-core.test.ts does not cover.
 *
 * Bridge: the lab's router bridges its LAN clients on br0 (their veths are
 * ports of the bridge), so client-to-client traffic never reaches the IP
 * layer of the router; conntrack sees it only through br_netfilter
 * (bridge-nf-call-iptables, on by default in this kernel). The devices are
 * found on br0 with their MACs, bridged traffic between two clients becomes
 * device flows of both, and a device-flow block holds on the bridge.
 *
 * Daemon: the app reading the kernel through flowgrabd (`--daemon`): a
 * Daemon from src/daemon/server.ts in this process, a policy letting root
 * use conntrack, dns and arp, and the app started with `daemon: socket`.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpinApp, startSpin } from '../../examples/spin/app.js';
import type { SpinMessage } from '../../examples/spin/io/contract.js';
import { Policy } from '../../src/auth/policy.js';
import { Daemon } from '../../src/daemon/server.js';
import {
  createHomeNetwork,
  generateTraffic,
  type HomeNetwork,
  type LabClient,
  waitFor,
} from '../../src/testing/index.js';
import { type Device, type DeviceFlow, socketRpc } from '../helpers/spin-core.js';

const PEER_PORT = 7100;
let home: HomeNetwork;
let listener: ChildProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), 'spin-modes-'));

beforeAll(async () => {
  home = await createHomeNetwork();
  // An echo service on the phone, for the laptop and the tv across the bridge.
  listener = home.clients[1].ns.spawn(['socat', `TCP-LISTEN:${PEER_PORT},fork,reuseaddr`, 'EXEC:cat']);
  await waitFor(
    async () => (await home.clients[1].ns.exec(['ss', '-Htln', `sport = :${PEER_PORT}`])).stdout.includes('LISTEN'),
    { timeoutMs: 10_000, what: 'the echo service on the phone' },
  );
});

afterAll(async () => {
  listener?.kill();
  await home?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A line echoed back by the phone over the bridge (LAN to LAN, not routed). */
async function lanEchoWorks(from: LabClient): Promise<boolean> {
  const phone = home.clients[1];
  const payload = `lan ${from.name} ${Date.now()}`;
  const r = await from.ns.exec(['socat', '-T', '1', '-', `TCP4:${phone.ipv4}:${PEER_PORT},connect-timeout=1`], {
    input: `${payload}\n`,
    allowFail: true,
    timeoutMs: 4000,
  });
  return r.stdout.trim() === payload;
}

const devicesOf = async (sock: string) => (await socketRpc(sock, 'list_devices')).result as Device[];
const flowsOf = async (sock: string, mac: string) =>
  (await socketRpc(sock, 'list_device_flows', { device: mac })).result as DeviceFlow[];

describe('router bridging its clients on br0', () => {
  let app: SpinApp;
  const sock = join(dir, 'bridge.sock');
  const messages: SpinMessage[] = [];

  beforeAll(async () => {
    app = await startSpin({
      netns: home.router.name,
      httpPort: 0,
      mqtt: false,
      rpcSocket: sock,
      stateDir: join(dir, 'bridge-state'),
      tableName: 'spin_bridge',
      periods: { trafficMs: 250 },
    });
    app.core.messages$.subscribe((m) => messages.push(m));
  });
  afterAll(async () => {
    await app?.close();
  });

  it('the clients are ports of br0, and the devices are found there with their MACs', async () => {
    const bridge = home.routerLan.bridge;
    const ports = (await home.router.exec(['ip', '-o', 'link', 'show', 'master', bridge])).stdout;
    expect(ports.trim().split('\n')).toHaveLength(home.clients.length);
    await generateTraffic(home, { rounds: 1 });
    await waitFor(
      async () => {
        const list = await devicesOf(sock);
        return home.clients.every((c) => list.some((d) => d.mac === c.mac));
      },
      { timeoutMs: 5000, what: 'the three clients as devices' },
    );
    const neigh = (await home.router.exec(['ip', 'neigh', 'show', 'dev', bridge])).stdout;
    const list = await devicesOf(sock);
    for (const c of home.clients) {
      expect(neigh).toContain(c.mac);
      expect(list.find((d) => d.mac === c.mac)!.ips).toContain(c.ipv4);
    }
  });

  it('bridged LAN-to-LAN traffic becomes device flows of both clients, in traffic messages', async () => {
    const [laptop, phone] = home.clients;
    expect(await lanEchoWorks(laptop)).toBe(true);
    const list = await devicesOf(sock);
    const l = list.find((d) => d.mac === laptop.mac)!;
    const p = list.find((d) => d.mac === phone.mac)!;
    let toPhone: DeviceFlow | undefined;
    await waitFor(
      async () => {
        toPhone = (await flowsOf(sock, laptop.mac)).find((f) => f.to === p.id && f.dst_port === PEER_PORT);
        const back = (await flowsOf(sock, phone.mac)).find((f) => f.to === l.id && f.dst_port === PEER_PORT);
        return (toPhone?.packets ?? 0) > 0 && (back?.packets ?? 0) > 0;
      },
      { timeoutMs: 5000, what: 'the laptop↔phone flow on both devices' },
    );
    const before = toPhone!.packets!;
    expect(await lanEchoWorks(laptop)).toBe(true);
    await waitFor(
      async () =>
        ((await flowsOf(sock, laptop.mac)).find((f) => f.to === p.id && f.dst_port === PEER_PORT)?.packets ?? 0) >
        before,
      { timeoutMs: 5000, what: 'the counters to grow' },
    );
    const traffic = messages
      .filter((m) => m.payload.includes('"traffic"'))
      .flatMap(
        (m) =>
          (JSON.parse(m.payload) as { result: { flows: { from: number; to: number; to_port: number }[] } }).result
            .flows,
      );
    expect(traffic).toContainEqual(expect.objectContaining({ from: l.id, to: p.id, to_port: PEER_PORT }));
  });

  it('a device-flow block between two clients holds on the bridge; the third client still reaches the phone', async () => {
    const [laptop, phone, tv] = home.clients;
    const p = (await devicesOf(sock)).find((d) => d.mac === phone.mac)!;
    await socketRpc(sock, 'set_device_flow_block', { device: laptop.mac, node: p.id, block: 1 });
    expect(await lanEchoWorks(laptop)).toBe(false);
    expect(await lanEchoWorks(tv)).toBe(true);
    await socketRpc(sock, 'set_device_flow_block', { device: laptop.mac, node: p.id, block: 0 });
    expect(await lanEchoWorks(laptop)).toBe(true);
  });
});

describe('reading the kernel through flowgrabd (--daemon)', () => {
  let daemon: Daemon;
  let app: SpinApp;
  const socket = join(dir, 'flowgrabd.sock');
  const sock = join(dir, 'daemon-rpc.sock');

  const newDaemon = () =>
    new Daemon({
      socket,
      policy: () =>
        Policy.parse({ version: 1, principals: [{ who: { uid: 0 }, sources: ['conntrack', 'dns', 'arp'] }] }),
    });
  /** The app's flows in the daemon, by name and state. */
  const appFlows = () =>
    (daemon.status({ uid: 0, gid: 0, pid: 0 }).clients as { uid: number; flows: { name: string; state: string }[] }[])
      .filter((c) => c.uid === 0)
      .flatMap((c) => c.flows);

  beforeAll(async () => {
    daemon = newDaemon();
    await daemon.listen();
    app = await startSpin({
      netns: home.router.name,
      daemon: socket,
      httpPort: 0,
      mqtt: false,
      rpcSocket: sock,
      stateDir: join(dir, 'daemon-state'),
      tableName: 'spin_daemon',
      dnsGroup: 54,
      periods: { trafficMs: 250 },
    });
  });
  afterAll(async () => {
    await app?.close();
    await daemon?.close();
  });

  it("the app's three flows run in the daemon, on behalf of root", () => {
    const flows = appFlows();
    expect(flows.map((f) => f.name).sort()).toEqual(['spin-arp', 'spin-conntrack', 'spin-dns']);
    expect(flows.every((f) => f.state === 'active')).toBe(true);
  });

  it('flowgrabd restarted: the app opens its three flows again in the new one', async () => {
    await daemon.close();
    daemon = newDaemon();
    await daemon.listen();
    await waitFor(() => appFlows().filter((f) => f.state === 'active').length === 3, {
      timeoutMs: 30_000,
      what: "the app's flows in the new daemon",
    });
    expect(
      appFlows()
        .map((f) => f.name)
        .sort(),
    ).toEqual(['spin-arp', 'spin-conntrack', 'spin-dns']);
  });

  it('list_devices and list_device_flows work through it: the clients with MACs, domains, and their flows to the server', async () => {
    await generateTraffic(home, { rounds: 1 });
    await waitFor(
      async () => {
        const list = await devicesOf(sock);
        return home.clients.every((c) => list.some((d) => d.mac === c.mac && d.domains.includes(`${c.fqdn}.`)));
      },
      { timeoutMs: 5000, what: 'the clients with their names through the daemon' },
    );
    const server = () => devicesOf(sock).then((l) => l.find((d) => d.ips.includes(home.server.ipv4)));
    await waitFor(async () => (await server()) !== undefined, { timeoutMs: 5000, what: 'the server node' });
    const s = (await server())!;
    const laptop = home.clients[0];
    await waitFor(
      async () =>
        (await flowsOf(sock, laptop.mac)).some(
          (f) => f.to === s.id && f.dst_port === home.server.tcpPort && (f.packets ?? 0) > 0,
        ),
      { timeoutMs: 5000, what: "the laptop's flow to the server's TCP port" },
    );
  });
});
