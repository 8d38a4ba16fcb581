import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attachHomeNetwork,
  createHomeNetwork,
  destroyHomeNetwork,
  generateTraffic,
  type HomeNetwork,
  isAlive,
  Lab,
  Netns,
  readProcs,
  resolveInZone,
  run,
  sweepStaleLabs,
  type TrafficSummary,
  uniqueId,
  waitFor,
} from '../../src/testing/lab/index.js';

/** One `conntrack -L` line: the first src/dst/sport/dport are the original direction, the second the reply. */
interface CtEntry {
  proto: string;
  orig: Record<string, string>;
  reply: Record<string, string>;
  line: string;
}

function parseConntrack(text: string): CtEntry[] {
  return text
    .split('\n')
    .filter((l) => /^\w+\s+\d+\s/.test(l))
    .map((line) => {
      const orig: Record<string, string> = {};
      const reply: Record<string, string> = {};
      for (const tok of line.split(/\s+/)) {
        const m = /^(src|dst|sport|dport)=(.+)$/.exec(tok);
        if (!m) continue;
        const [, k, v] = m;
        if (orig[k] === undefined) orig[k] = v;
        else if (reply[k] === undefined) reply[k] = v;
      }
      return { proto: line.split(/\s+/)[0], orig, reply, line };
    });
}

const digShort = async (ns: Netns, server: string, name: string, type: string) =>
  (await ns.exec(['dig', '+short', '+time=5', '+tries=2', `@${server}`, name, type])).stdout.trim().split('\n');

describe('home network lab', () => {
  let home: HomeNetwork;
  let traffic: TrafficSummary;
  let nsNames: string[];

  beforeAll(async () => {
    home = await createHomeNetwork();
    nsNames = [home.router.name, home.wan.name, ...home.clients.map((c) => c.ns.name)];
    traffic = await generateTraffic(home);
  });

  afterAll(async () => {
    await home?.close();
  });

  it('creates one namespace per role, named from a fresh id', async () => {
    expect(home.id).toMatch(/^fg[0-9a-z]{5}$/);
    expect(nsNames).toEqual(['router', 'wan', 'c1', 'c2', 'c3'].map((s) => `${home.id}-${s}`));
    const listed = await Netns.list();
    for (const n of nsNames) expect(listed).toContain(n);
  });

  it('resolves the two-link CNAME chain to the WAN server from every client', async () => {
    const want = resolveInZone(home.names, 'www.shop.test');
    expect(want.chain).toEqual(['www.shop.test', 'cdn.shop.test', 'server.wan.test']);
    for (const c of home.clients) {
      const lines = await digShort(c.ns, home.routerLan.ipv4, 'www.shop.test', 'A');
      expect(lines).toEqual(['cdn.shop.test.', 'server.wan.test.', '198.51.100.10']);
      expect(lines.at(-1)).toBe(home.server.ipv4);
    }
  });

  it('answers AAAA over IPv6 with the configured TTL, and the clients by name', async () => {
    const c = home.clients[0];
    const answer = await c.ns.exec(['dig', '+noall', '+answer', `@${home.routerLan.ipv6}`, 'server.wan.test', 'AAAA']);
    const [name, ttl, , type, addr] = answer.stdout.trim().split(/\s+/);
    expect({ name, ttl: Number(ttl), type, addr }).toEqual({
      name: 'server.wan.test.',
      ttl: 60,
      type: 'AAAA',
      addr: '2001:db8:77::10',
    });
    for (const other of home.clients) {
      expect(await digShort(c.ns, home.routerLan.ipv4, other.fqdn, 'A')).toEqual([other.ipv4]);
      expect(await digShort(c.ns, home.routerLan.ipv4, other.fqdn, 'AAAA')).toEqual([other.ipv6]);
    }
  });

  it('reaches the server from every client: ping, TCP echo, UDP echo and HTTP, on IPv4 and IPv6', () => {
    expect(traffic.failures).toEqual([]);
    expect(traffic.sent).toEqual({ dns: 12, ping: 6, tcp: 6, udp: 6, http: 6 });
    for (const c of home.clients) {
      const mine = traffic.exchanges.filter((x) => x.client === c.name);
      expect(mine.map((x) => `${x.kind}${x.family}:${x.ok}`).sort()).toEqual(
        ['http4', 'http6', 'ping4', 'ping6', 'tcp4', 'tcp6', 'udp4', 'udp6'].map((k) => `${k}:true`),
      );
    }
    const aaaa = traffic.dns.find((d) => d.name === 'www.shop.test' && d.type === 'AAAA');
    expect(aaaa?.answers).toEqual(['cdn.shop.test.', 'server.wan.test.', '2001:db8:77::10']);
  });

  it("conntrack in the router shows the clients' flows, IPv4 NATed to the WAN address, IPv6 routed", async () => {
    const sysctl = await home.router.exec([
      'sysctl',
      '-n',
      'net.netfilter.nf_conntrack_acct',
      'net.netfilter.nf_conntrack_timestamp',
      'net.netfilter.nf_conntrack_events',
    ]);
    expect(sysctl.stdout.trim().split('\n')).toEqual(['1', '1', '1']);
    const v4 = parseConntrack((await home.router.exec(['conntrack', '-L', '-f', 'ipv4'])).stdout);
    const v6 = parseConntrack((await home.router.exec(['conntrack', '-L', '-f', 'ipv6'])).stdout);
    for (const c of home.clients) {
      const out = v4.filter((e) => e.orig.src === c.ipv4 && e.orig.dst === home.server.ipv4);
      expect(new Set(out.map((e) => e.proto))).toEqual(new Set(['icmp', 'tcp', 'udp']));
      for (const e of out) {
        expect(e.reply.src).toBe(home.server.ipv4);
        expect(e.reply.dst).toBe('198.51.100.1');
        expect(e.line).toMatch(/packets=\d+ bytes=\d+/); // nf_conntrack_acct=1
      }
      const out6 = v6.filter((e) => e.orig.src === c.ipv6 && e.orig.dst === home.server.ipv6);
      expect(new Set(out6.map((e) => e.proto))).toEqual(new Set(['icmpv6', 'tcp', 'udp']));
      for (const e of out6) expect(e.reply.dst).toBe(c.ipv6);
      // DNS to the router itself is tracked too (input hook).
      expect(v4.some((e) => e.orig.src === c.ipv4 && e.orig.dst === home.routerLan.ipv4 && e.orig.dport === '53')).toBe(
        true,
      );
    }
  });

  it("lists every client's MAC in the router's neighbour table on br0", async () => {
    const { stdout } = await home.router.exec(['ip', 'neigh', 'show', 'dev', 'br0']);
    const macOf = new Map<string, string>();
    for (const line of stdout.split('\n')) {
      const m = /^(\S+) lladdr (\S+)/.exec(line);
      if (m) macOf.set(m[1], m[2]);
    }
    for (const c of home.clients) {
      expect(macOf.get(c.ipv4)).toBe(c.mac);
      expect(macOf.get(c.ipv6)).toBe(c.mac);
    }
  });

  it('close() stops the daemons and removes every namespace and the state directory', async () => {
    const procs = readProcs(home.dir);
    expect(procs.map((p) => p.name).sort()).toEqual(['dnsmasq', 'http', 'tcp-echo', 'udp-echo']);
    for (const p of procs) expect(isAlive(p.pid)).toBe(true);
    await home.close();
    const listed = await Netns.list();
    for (const n of nsNames) expect(listed).not.toContain(n);
    expect(existsSync(home.dir)).toBe(false);
    for (const p of procs) expect(isAlive(p.pid)).toBe(false);
    await expect(home.close()).resolves.toBeUndefined();
  });
});

describe('lab housekeeping', () => {
  it('a persistent home network lives on until destroyHomeNetwork(id) removes it', async () => {
    const created = await createHomeNetwork({ persistent: true });
    try {
      for (const name of ['dnsmasq', 'http', 'tcp-echo', 'udp-echo']) {
        const pid = Number(readFileSync(join(created.dir, `${name}.pid`), 'utf8'));
        expect(isAlive(pid)).toBe(true);
      }
      const attached = await attachHomeNetwork(created.id);
      const c = attached.clients[2];
      expect(await digShort(c.ns, attached.routerLan.ipv4, 'www.shop.test', 'A')).toContain(attached.server.ipv4);
      // Persistent labs outlive their creator on purpose: a sweep must leave them alone.
      expect(await sweepStaleLabs()).not.toContain(created.id);
      const r = await destroyHomeNetwork(created.id);
      expect(r.found).toBe(true);
      expect(r.namespaces.sort()).toEqual(['c1', 'c2', 'c3', 'router', 'wan'].map((s) => `${created.id}-${s}`));
      expect(r.killed).toHaveLength(4);
      for (const pid of r.killed) expect(isAlive(pid)).toBe(false);
      expect(existsSync(created.dir)).toBe(false);
      await expect(attachHomeNetwork(created.id)).rejects.toThrow(/not up/);
    } finally {
      await destroyHomeNetwork(created.id);
    }
  });

  it('sweepStaleLabs removes a lab whose creator died, and only that one', async () => {
    const stale = new Lab();
    const live = new Lab();
    try {
      const ns = await stale.netns('x');
      const sleeper = await stale.spawn(ns, ['sleep', '30'], { name: 'sleeper' });
      await live.netns('y');
      // Pretend the creator was killed: point the owner marker at a pid that has exited.
      const dead = spawnSync('true').pid;
      const owner = JSON.parse(readFileSync(join(stale.dir, 'owner.json'), 'utf8'));
      writeFileSync(join(stale.dir, 'owner.json'), JSON.stringify({ ...owner, pid: dead }));
      const swept = await sweepStaleLabs();
      expect(swept).toContain(stale.id);
      expect(swept).not.toContain(live.id);
      const listed = await Netns.list();
      expect(listed).not.toContain(`${stale.id}-x`);
      expect(listed).toContain(`${live.id}-y`);
      expect(existsSync(stale.dir)).toBe(false);
      await waitFor(() => !isAlive(sleeper.pid!), { timeoutMs: 3_000, what: 'the stale sleeper to die' });
    } finally {
      await stale.close();
      await live.close();
    }
    expect(await Netns.list()).not.toContain(`${live.id}-y`);
  });

  it('Lab.close runs every step, reports failures together, and is idempotent', async () => {
    const lab = new Lab();
    const ns = await lab.netns('z');
    const order: string[] = [];
    lab.defer(() => order.push('first'));
    lab.defer(() => {
      throw new Error('boom');
    });
    lab.defer(() => order.push('last'));
    const closing = lab.close();
    expect(lab.close()).toBe(closing);
    await expect(closing).rejects.toThrow(/1 cleanup step\(s\) failed: boom/);
    expect(order).toEqual(['last', 'first']);
    expect(await Netns.list()).not.toContain(ns.name);
    await expect(lab.netns('again')).rejects.toMatchObject({ code: 'FG_ERR_CLOSED' });
  });

  it('run() names the command, its exit code and stderr; waitFor and uniqueId are bounded and unique', async () => {
    const missing = `${uniqueId()}-absent`;
    await expect(run(['ip', 'netns', 'exec', missing, 'true'])).rejects.toThrow(
      new RegExp(`ip netns exec ${missing} true\` exited with code 255: Cannot open network namespace "${missing}"`),
    );
    const r = await run(['sh', '-c', 'echo out; echo err >&2; exit 3'], { allowFail: true });
    expect(r).toEqual({ stdout: 'out\n', stderr: 'err\n', code: 3 });
    expect((await run(['cat'], { input: 'piped' })).stdout).toBe('piped');
    await expect(run(['sleep', '5'], { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'FG_ERR_TIMEOUT',
      exitCode: 124,
    });
    expect((await run(['sleep', '5'], { timeoutMs: 100, allowFail: true })).code).toBe(124);
    const t0 = Date.now();
    await expect(waitFor(() => false, { timeoutMs: 150, intervalMs: 20 })).rejects.toMatchObject({
      code: 'FG_ERR_TIMEOUT',
    });
    // It waited its whole bound (how much longer a loaded machine took is bench's business, not a test's).
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    const ids = Array.from({ length: 2_000 }, () => uniqueId());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^fg[0-9a-z]{5}$/);
  });
});
