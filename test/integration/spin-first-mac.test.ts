// SPIN's page takes a device's MAC from its first nodeInfo only. On a fresh
// lab the clients know the router's MAC but the router has forgotten theirs:
// a client's DNS query reaches the router (and the app) before the router
// resolves the client to answer it, so the query comes before the neighbour
// event. Every device's first nodeInfo must still carry its MAC. Repeated on
// several fresh labs, since the race goes either way.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSpin } from '../../examples/spin/app.js';
import type { SpinMessage } from '../../examples/spin/io/contract.js';
import { createHomeNetwork, generateTraffic, type HomeNetwork, waitFor } from '../../src/testing/index.js';

const RUNS = 3;

interface NodeInfo {
  id: number;
  mac?: string;
  ips: string[];
}

function nodeInfos(messages: SpinMessage[]): NodeInfo[] {
  return messages
    .filter((m) => m.topic.startsWith('SPIN/traffic/node/') && m.payload !== '')
    .map((m) => (JSON.parse(m.payload) as { result: NodeInfo }).result);
}

/** Every client asks the router's resolver over and over until stopped (bounded). */
function busyClients(home: HomeNetwork): { stop(): Promise<void> } {
  let stopping = false;
  const loops = home.clients.map(async (c) => {
    for (let i = 0; i < 400 && !stopping; i++)
      await c.ns.exec(['dig', '+short', '+tries=1', '+time=1', `@${home.routerLan.ipv4}`, `q${i}.${c.name}.lan`], {
        allowFail: true,
        timeoutMs: 3000,
      });
  });
  return {
    stop: async () => {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

describe('first nodeInfo', () => {
  it(`carries each device's MAC on ${RUNS} fresh labs (the app starts while the clients are busy)`, async () => {
    const misses: string[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const home = await createHomeNetwork();
      const dir = mkdtempSync(join(tmpdir(), 'spin-mac-'));
      const messages: SpinMessage[] = [];
      await generateTraffic(home, { rounds: 1, ipv6: false });
      await home.router.exec(['ip', 'neigh', 'flush', 'all']);
      let busy: { stop(): Promise<void> } | undefined;
      try {
        const app = await startSpin({
          netns: home.router.name,
          httpPort: 0,
          mqtt: false,
          stateDir: join(dir, 'state'),
          credentialsFile: false,
          periods: { trafficMs: 250 },
          // From the very start: the first nodeInfo may come while startSpin is still opening the feeds.
          tap: (m) => messages.push(m),
        });
        busy = busyClients(home);
        try {
          const infos = () => nodeInfos(messages);
          await waitFor(() => home.clients.every((c) => infos().some((n) => n.mac === c.mac)), { timeoutMs: 10_000 });
          // Every node id's first nodeInfo that holds a client's address: the client's MAC in it.
          const first = new Map<number, NodeInfo>();
          for (const n of infos()) if (!first.has(n.id)) first.set(n.id, n);
          for (const c of home.clients) {
            const ids = [...first.values()].filter((n) => n.ips.includes(c.ipv4) || n.mac === c.mac);
            expect(ids.length, `${c.name} run ${run}`).toBeGreaterThan(0);
            for (const n of ids) if (n.mac !== c.mac) misses.push(`run ${run} ${c.name}: ${JSON.stringify(n)}`);
          }
        } finally {
          await app.close();
        }
      } finally {
        await busy?.stop();
        await home.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }
    expect(misses).toEqual([]);
  });
});
