// Blocks that would cut the router are refused (unless forced), a blocked
// name that resolves to the router leaves the router reachable, a JSON-RPC
// batch reaches the kernel as one nft transaction, what callers can create
// is bounded, and the Unix socket answers a client that half-closes.
import { type ChildProcess, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RPC_LIMITS } from '../../examples/spin/io/methods.js';
import { type HomeNetwork, run, waitFor } from '../../src/testing/index.js';
import { type SpinLab, socketRpc, socketRpcRaw, startSpinLab, tcpWorks } from '../helpers/spin-core.js';

let home: HomeNetwork;
let sock: string;
let lab: SpinLab;
const table = `spin_g${process.pid % 100_000}`;
const logs: string[] = [];

beforeAll(async () => {
  lab = await startSpinLab('spin-guard', { tableName: table, periods: { trafficMs: 250 }, log: (l) => logs.push(l) });
  ({ home, sock } = lab);
});

afterAll(() => lab?.close());

const blockList = async () => (await socketRpc(sock, 'list_iplist', { list: 'block' })).result as string[];
const setElements = async (set: string) =>
  (await home.router.exec(['nft', 'list', 'set', 'inet', `flowgrab_${table}`, set])).stdout;
/** The laptop asks the router's resolver; true when the answer comes. */
const dnsWorks = async () => {
  const [laptop] = home.clients;
  const r = await laptop.ns.exec(['dig', '+short', '+tries=1', '+time=1', `@${home.routerLan.ipv4}`, 'phone.lan'], {
    allowFail: true,
    timeoutMs: 5000,
  });
  return r.stdout.trim() === home.clients[1].ipv4;
};

describe('blocks that would cut the router', () => {
  it('refuses /0, ::/0, too-wide prefixes, loopback and the router’s addresses unless forced', async () => {
    for (const ip of ['0.0.0.0/0', '::/0', '10.0.0.0/4', '127.0.0.1', '::1', home.routerLan.ipv4, '192.168.0.0/16']) {
      const r = await socketRpc(sock, 'add_iplist_ip', { list: 'block', ip });
      expect(r.error?.code, ip).toBe(-3);
      expect(r.error?.message, ip).toMatch(/^Refused: /);
    }
    expect(await blockList()).toEqual([]);
    expect(await dnsWorks()).toBe(true);
    expect(await tcpWorks(home, home.clients[0])).toBe(true);
    // force: 1 is the caller saying they mean it (a wide prefix away from the router here).
    const forced = await socketRpc(sock, 'add_iplist_ip', { list: 'block', ip: '100.0.0.0/7', force: 1 });
    expect(forced.error).toBeUndefined();
    expect(await blockList()).toEqual(['100.0.0.0/7']);
    expect(await setElements('block4')).toContain('100.0.0.0/7');
    await socketRpc(sock, 'remove_iplist_ip', { list: 'block', ip: '100.0.0.0/7' });
    // spind's arity rules still hold for everything else.
    const extra = await socketRpc(sock, 'add_iplist_ip', { list: 'block', ip: '192.0.2.1', bogus: 1 });
    expect(extra.error?.message).toBe('Wrong number of arguments');
  });

  it('blocking a DNS-only node whose name resolves to the router keeps the router out of the block set, with a warning', async () => {
    const [laptop] = home.clients;
    await laptop.ns.exec(['dig', '+short', `@${home.routerLan.ipv4}`, 'router.lan']);
    let id: number | undefined;
    await waitFor(
      async () => {
        for (let n = 1; n < 200 && id === undefined; n++) {
          const r = await socketRpc(sock, 'get_device_data', { node: n });
          const node = r.result as { id: number; domains?: string[] } | undefined;
          if (node?.domains?.includes('router.lan.')) id = node.id;
        }
        return id !== undefined;
      },
      { timeoutMs: 10_000 },
    );
    const r = await socketRpc(sock, 'add_iplist_node', { list: 'block', node: id });
    expect(r.error).toBeUndefined();
    expect(await blockList()).toContain('router.lan.');
    await laptop.ns.exec(['dig', '+short', `@${home.routerLan.ipv4}`, 'router.lan']);
    expect(await setElements('bname4')).not.toContain(home.routerLan.ipv4);
    expect(await dnsWorks()).toBe(true);
    expect(logs.some((l) => l.includes(`router.lan. resolves to ${home.routerLan.ipv4}`))).toBe(true);
    await socketRpc(sock, 'remove_iplist_node', { list: 'block', node: id });
  });
});

/** `nft monitor` in the router's namespace: counts the transactions that replace the app's table (one delete each). */
async function watchTable(): Promise<{ count(): number; stop(): void }> {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', home.router.name, 'nft', 'monitor'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  // In sync once it reports a table of our own.
  const probe = `probe_${process.pid}`;
  await waitFor(
    async () => {
      await home.router.exec(['nft', `add table inet ${probe}; delete table inet ${probe}`]);
      return out.includes(probe);
    },
    { timeoutMs: 5000 },
  );
  // Transactions that replaced the table: nft prints "# new generation …" after each one's changes.
  const added = () =>
    out
      .split(/^# new generation .*$/m)
      .slice(0, -1)
      .filter((changes) => changes.includes(`delete table inet flowgrab_${table}`)).length;
  return { count: added, stop: () => child.kill() };
}

describe('batches and bounds', () => {
  it('a 300-call batch of add_iplist_ip is one nft transaction and blocks all 300', async () => {
    const monitor = await watchTable();
    try {
      const before = monitor.count();
      const batch = Array.from({ length: 300 }, (_, i) => ({
        jsonrpc: '2.0',
        id: i,
        method: 'add_iplist_ip',
        params: { list: 'block', ip: `203.0.${113 + Math.floor(i / 250)}.${(i % 250) + 1}` },
      }));
      const replies = JSON.parse(await socketRpcRaw(sock, JSON.stringify(batch))) as { error?: unknown }[];
      expect(replies).toHaveLength(300);
      expect(replies.filter((r) => r.error)).toEqual([]);
      // The single transaction is there before the reply; give nft monitor a moment to print it.
      await waitFor(() => monitor.count() > before, { timeoutMs: 5000 });
      await home.router.exec(['nft', 'add table inet sync_probe; delete table inet sync_probe']);
      expect(monitor.count() - before).toBe(1);
      expect(await blockList()).toHaveLength(300);
      const set = await setElements('block4');
      expect(set).toContain('203.0.113.1');
      expect(set).toContain('203.0.114.50');
      const undo = batch.map((b) => ({ ...b, method: 'remove_iplist_ip' }));
      await socketRpcRaw(sock, JSON.stringify(undo));
      expect(await blockList()).toEqual([]);
    } finally {
      monitor.stop();
    }
  });

  it('node_add_ip node=0 and batch size are bounded', async () => {
    const n = RPC_LIMITS.rpcNodes + 1;
    const batch = Array.from({ length: n }, (_, i) => ({
      jsonrpc: '2.0',
      id: i,
      method: 'node_add_ip',
      params: { node: 0, ipaddr: `10.${100 + Math.floor(i / 250)}.${i % 250}.1` },
    }));
    const replies = JSON.parse(await socketRpcRaw(sock, JSON.stringify(batch))) as { error?: { message: string } }[];
    expect(replies.filter((r) => !r.error)).toHaveLength(RPC_LIMITS.rpcNodes);
    expect(replies[n - 1].error?.message).toMatch(/Too many nodes added by RPC/);
    const tooLong = JSON.parse(await socketRpcRaw(sock, JSON.stringify([...batch, ...batch, ...batch])));
    expect(tooLong.error.message).toMatch(/Batch too large/);
  });
});

describe('Unix socket', () => {
  it('answers a client that half-closes after writing (echo … | socat), for a request that waits on the firewall', async () => {
    const req = JSON.stringify({
      jsonrpc: '2.0',
      id: 7,
      method: 'add_iplist_ip',
      params: { list: 'block', ip: '192.0.2.7' },
    });
    const r = await run(['sh', '-c', `echo '${req}' | socat -t 30 - UNIX:${sock}`], { timeoutMs: 30_000 });
    expect(JSON.parse(r.stdout)).toEqual({ jsonrpc: '2.0', id: 7 });
    const reply = await new Promise<string>((resolve, reject) => {
      const s = createConnection(sock);
      let out = '';
      s.on('connect', () =>
        s.end(
          JSON.stringify({
            jsonrpc: '2.0',
            id: 8,
            method: 'remove_iplist_ip',
            params: { list: 'block', ip: '192.0.2.7' },
          }),
        ),
      );
      s.on('data', (d) => (out += d));
      s.on('close', () => resolve(out));
      s.on('error', reject);
    });
    expect(JSON.parse(reply)).toEqual({ jsonrpc: '2.0', id: 8 });
    expect(await blockList()).toEqual([]);
  });
});
