/**
 * Getting more than the policy grants: source parameters, capabilities that
 * `*` never gives, ordering rules judged by what filters do, the daemon's
 * anonymization secret, and mark ranges. Each test tries the attack first.
 */
import { createHmac } from 'node:crypto';
import { lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { authorize, POLICY_SECRET } from '../../../src/auth/authorize.js';
import { policyAuthorizer } from '../../../src/auth/flowgrab.js';
import { PolicyError, parsePolicy } from '../../../src/auth/load.js';
import { markAllowed } from '../../../src/auth/marks.js';
import type { Identity, PolicyInput } from '../../../src/auth/policy.js';
import { prefixPreserving } from '../../../src/filters/lib/anonymize.js';
import { parseGraph } from '../../../src/filters/parser.js';
import { printGraph } from '../../../src/filters/print.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import { fakeFeed } from '../../../src/testing/fake-source.js';
import { ct } from '../../helpers/records.js';

const me: Identity = { uid: 6001, gid: 6001, user: 'eve' };
type P = PolicyInput['principals'][number];
const policyOf = (p: Omit<P, 'who'>) =>
  parsePolicy(JSON.stringify({ version: 1, principals: [{ who: { uid: 6001 }, ...p }] }));
const check = (p: Omit<P, 'who'>, text: string, ctx = {}) => authorize(parseGraph(text), me, policyOf(p), ctx);
const codes = (r: { issues: { code: string }[] }) => r.issues.map((i) => i.code);
const all = { sources: ['*'], filters: ['*'] };

describe('source parameters', () => {
  it('oneOf applies to sources as to filters, netns and dns group included', () => {
    const p = {
      ...all,
      capabilities: ['firewall', 'capture-dns'] as const,
      params: { 'conntrack.netns': { oneOf: ['a'] }, 'dns.group': { oneOf: [53] } },
    };
    expect(check({ ...p, capabilities: [...p.capabilities] }, 'conntrack(netns=b)').issues).toEqual([
      expect.objectContaining({ code: 'param_limit', message: 'conntrack: netns="b" is not one of "a"' }),
    ]);
    expect(codes(check({ ...p, capabilities: [...p.capabilities] }, 'conntrack(netns=a)'))).toEqual([]);
    expect(check({ ...p, capabilities: [...p.capabilities] }, 'dns(group=99)').issues).toEqual([
      expect.objectContaining({ code: 'param_limit', message: 'dns: group=99 is not one of 53' }),
    ]);
    expect(codes(check({ ...p, capabilities: [...p.capabilities] }, 'dns(group=53)'))).toEqual([]);
  });

  it('without a netns rule only the daemon’s own namespace; the netns capability grants any', () => {
    expect(check(all, 'conntrack(netns=other)').issues).toEqual([
      expect.objectContaining({
        code: 'param_denied',
        message: expect.stringMatching(/only the daemon's own network namespace/),
      }),
    ]);
    expect(codes(check(all, 'arp(netns=other) | conntrack()'))).toEqual(['param_denied']);
    expect(codes(check(all, 'conntrack()'))).toEqual([]);
    expect(codes(check({ ...all, capabilities: ['netns'] }, 'conntrack(netns=other)'))).toEqual([]);
  });

  it('duration limits compare durations', () => {
    const p = { ...all, params: { 'count.every': { min: '5s' } } };
    expect(codes(check(p, 'conntrack() -> count(every=1s)'))).toEqual(['param_limit']);
    expect(codes(check(p, 'conntrack() -> count(every=1000)'))).toEqual(['param_limit']);
    expect(codes(check(p, 'conntrack() -> count(every=4999ms)'))).toEqual(['param_limit']);
    expect(codes(check(p, 'conntrack() -> count(every=10s)'))).toEqual([]);
    expect(codes(check(p, 'conntrack() -> count(every=5000)'))).toEqual([]);
    expect(codes(check(p, 'conntrack() -> count(by=orig.src)'))).toEqual(['param_required']);
    expect(codes(check({ ...all, params: { 'conntrack.poll': { max: '1m' } } }, 'conntrack(poll=2m)'))).toEqual([
      'param_limit',
    ]);
  });

  it('unknown parameter keys in a policy are an error at load, with the path', () => {
    const bad = () => policyOf({ params: { 'conntrack.netnz': { oneOf: ['a'] }, 'conntrak.netns': { oneOf: ['a'] } } });
    expect(bad).toThrow(PolicyError);
    expect(bad).toThrow(
      /principals\[0\]\.params\."conntrack\.netnz": conntrack has no parameter netnz \(it has events, family/,
    );
    expect(bad).toThrow(/principals\[0\]\.params\."conntrak\.netns": no source or filter is named conntrak/);
    expect(() => policyOf({ capabilities: ['root'] as never })).toThrow(/principals\[0\]\.capabilities\[0\]/);
    expect(() => policyOf({ marks: ['0x10/0xfg'] })).toThrow(/principals\[0\]\.marks\[0\]: a mark like 0x10/);
    expect(() => policyOf({ params: { 'count.every': { min: 'soon' } } })).toThrow(/a number or a duration/);
  });
});

describe('capabilities', () => {
  it('"*" grants no capability: verdicts, files, DNS capture and firewall rules need naming', () => {
    const r = check(all, 'nfqueue(queue=7, verdict=drop) | replay(file=/etc/shadow) | dns() | conntrack() -> enrich()');
    expect(r.issues.map((i) => `${i.code}: ${i.message}`)).toEqual([
      'capability_denied: source `nfqueue` gives verdicts on queued packets: your policy does not grant the capability "verdicts"',
      'capability_denied: source `replay` reads files: your policy does not grant the capability "read-files"',
      'capability_denied: source `dns` installs firewall rules: your policy does not grant the capability "firewall"',
      'capability_denied: source `dns` captures DNS traffic: your policy does not grant the capability "capture-dns"',
      'capability_denied: filter `enrich` installs firewall rules: your policy does not grant the capability "firewall"',
      'capability_denied: filter `enrich` captures DNS traffic: your policy does not grant the capability "capture-dns"',
    ]);
    // Naming the source is not granting what it can do either.
    expect(codes(check({ sources: ['nfqueue'] }, 'nfqueue(queue=7)'))).toEqual(['capability_denied']);
    const granted = {
      ...all,
      capabilities: ['read-files', 'firewall', 'capture-dns'] as P['capabilities'],
      verdicts: true,
    };
    expect(codes(check(granted, 'nfqueue(queue=7) | replay(file=/tmp/x) | dns() | conntrack() -> enrich()'))).toEqual(
      [],
    );
  });

  it("enrich() captures DNS in its source's namespace: that needs a dns.netns grant, not a conntrack.netns one", () => {
    const p = {
      ...all,
      capabilities: ['firewall', 'capture-dns'] as P['capabilities'],
      params: { 'conntrack.netns': { oneOf: ['lab'] } },
    };
    expect(codes(check(p, 'conntrack(netns=lab)'))).toEqual([]);
    expect(check(p, 'conntrack(netns=lab) -> enrich()').issues).toEqual([
      expect.objectContaining({
        code: 'param_denied',
        path: ['root', 'steps', 1],
        message: `enrich: captures DNS in conntrack(netns="lab")'s namespace: your policy allows DNS capture only in the daemon's own namespace`,
      }),
    ]);
    expect(codes(check({ ...p, params: {} }, 'conntrack() -> enrich()'))).toEqual([]);
    const dnsToo = { ...p, params: { ...p.params, 'dns.netns': { oneOf: ['lab'] } } };
    expect(codes(check(dnsToo, 'conntrack(netns=lab) -> enrich()'))).toEqual([]);
    const other = { ...p, params: { 'conntrack.netns': { oneOf: ['lab', 'b'] }, 'dns.netns': { oneOf: ['b'] } } };
    expect(check(other, 'conntrack(netns=lab) -> enrich()').issues[0].message).toMatch(/only in "b"$/);
    const anyNs = { ...p, capabilities: ['firewall', 'capture-dns', 'netns'] as P['capabilities'] };
    expect(codes(check(anyNs, 'conntrack(netns=lab) -> enrich()'))).toEqual([]);
  });

  it('a policy whose limits or names would limit nothing is refused, saying where and why', () => {
    const bad = (p: Omit<P, 'who'>) => () => policyOf(p);
    expect(bad({ params: { 'conntrack.netns': {} } })).toThrow(
      /principals\[0\]\.params\."conntrack\.netns": an empty limit limits nothing: give max, min or oneOf/,
    );
    expect(bad({ params: { 'conntrack.netns': { max: 5 } } })).toThrow(/namespaces are allowed by name: give oneOf/);
    expect(bad({ params: { 'conntrack.poll': { max: '1000h' } } })).toThrow(
      /params\."conntrack\.poll"\.max: "1000h": .*at most 2147483647 ms/,
    );
    expect(bad({ order: [{ filter: 'projekt', requires: 'anonymize', position: 'before' }] })).toThrow(
      /order\[0\]\.filter: no source or filter is named projekt \(did you mean project\?\)/,
    );
    expect(bad({ order: [{ filter: 'project', requires: 'anonymise', position: 'before' }] })).toThrow(
      /order\[0\]\.requires: no source or filter is named anonymise/,
    );
    expect(bad({ redact: ['orig.src', 'orig.scr'] })).toThrow(
      /redact\[1\]: no source's records have a field orig\.scr/,
    );
    const good = policyOf({
      params: { 'conntrack.netns': { oneOf: ['a'] }, 'conntrack.poll': { max: '596h', min: '1s' } },
      redact: ['orig.src', 'payload', 'resolved.ip', 'orig'],
      order: [{ filter: 'project', requires: 'anonymize', position: 'before' }],
    });
    expect(good.principals).toHaveLength(1);
  });

  it('under a policy conntrack polls at most once a second (each poll walks the whole table); root as it likes', () => {
    for (const fast of ['1ms', '999ms', 0]) {
      const r = check(all, `conntrack(poll=${fast})`);
      expect(r.issues, String(fast)).toEqual([
        expect.objectContaining({ code: 'param_limit', message: expect.stringMatching(/polls are at least 1s apart/) }),
      ]);
    }
    for (const ok of ['1s', 1000, '10m']) expect(codes(check(all, `conntrack(poll=${ok})`)), String(ok)).toEqual([]);
    expect(codes(authorize(parseGraph('conntrack(poll=10ms)'), { uid: 0, gid: 0 }, policyOf(all)))).toEqual([]);
  });

  it('the nats() source needs the "nats" capability, which "*" does not grant', () => {
    const g = 'nats(url="nats://127.0.0.1:4222", stream=flowgrab, subject="flowgrab.>", durable=d)';
    expect(check(all, g).issues.map((i) => i.message)).toEqual([
      'source `nats` connects to a NATS server and consumes from its streams: your policy does not grant the capability "nats"',
    ]);
    expect(codes(check({ ...all, capabilities: ['nats'] as P['capabilities'] }, g))).toEqual([]);
  });

  it('"verdicts": true and the "verdicts" capability are one right (the queue sharing reads either)', () => {
    expect(policyOf({ capabilities: ['verdicts'] }).principals[0].verdicts).toBe(true);
    expect(policyOf({ verdicts: true }).principals[0].capabilities).toEqual(['verdicts']);
    expect(codes(check({ sources: ['nfqueue'], capabilities: ['verdicts'] }, 'nfqueue(queue=7)'))).toEqual([]);
  });

  it("the daemon's own queue numbers are refused to the graph source, whoever asks", () => {
    const p = { sources: ['nfqueue'], verdicts: true };
    expect(check(p, 'nfqueue(queue=5)', { reservedQueues: [5] }).issues).toEqual([
      expect.objectContaining({
        code: 'queue_reserved',
        message: expect.stringMatching(/queue 5 is the daemon's own/),
      }),
    ]);
    expect(codes(check(p, 'nfqueue(6)', { reservedQueues: [5] }))).toEqual([]);
    const root = authorize(parseGraph('nfqueue(5)'), { uid: 0, gid: 0 }, policyOf(p), { reservedQueues: [5] });
    expect(codes(root)).toEqual(['queue_reserved']);
  });
});

describe('ordering rules judged by what filters do', () => {
  const anon = { ...all, order: [{ filter: 'project', requires: 'anonymize', position: 'before' as const }] };
  it('anonymize(proto) before project(orig.src, orig.dst) does not satisfy "anonymize before project"', () => {
    expect(check(anon, 'conntrack() -> anonymize(proto, mode=hash) -> project(orig.src, orig.dst)').issues).toEqual([
      expect.objectContaining({
        code: 'order',
        message: expect.stringMatching(/orig\.src, orig\.dst reach it not anonymized/),
      }),
    ]);
    expect(codes(check(anon, 'conntrack() -> anonymize(orig.src, orig.dst) -> project(orig.src, orig.dst)'))).toEqual(
      [],
    );
    expect(
      codes(check(anon, 'conntrack() -> anonymize(orig.src) -> redact(orig.dst) -> project(orig.src, orig.dst)')),
    ).toEqual([]);
    expect(codes(check(anon, 'conntrack() -> anonymize(orig.src, orig.dst) -> project(orig)'))).toEqual(['order']);
    expect(
      codes(check(anon, 'conntrack() -> anonymize(orig.src) -> match(proto == tcp) -> project(orig.src, type)')),
    ).toEqual([]);
    // Exported flows (nats) carry their reply tuple as rsrc, rdst: addresses too, mirrors of dst, src.
    const sampled = {
      ...all,
      capabilities: ['nats'] as P['capabilities'],
      order: [{ filter: 'sample', requires: 'anonymize', position: 'before' as const }],
    };
    const fromNats = (fields: string) => `nats(url="nats://127.0.0.1:4222") -> anonymize(${fields}) -> sample(rate=1)`;
    const named = 'orig, reply, client, server, resolved, ip, answers, src, dst';
    expect(check(sampled, fromNats(named)).issues).toEqual([
      expect.objectContaining({ code: 'order', message: expect.stringMatching(/rsrc, rdst reach it not anonymized/) }),
    ]);
    expect(codes(check(sampled, fromNats(`${named}, rsrc, rdst`)))).toEqual([]);
    // One branch forgets a field: not on EVERY path.
    expect(
      codes(
        check(
          anon,
          'conntrack() -> (anonymize(orig.src, orig.dst) | anonymize(orig.src)) -> project(orig.src, orig.dst)',
        ),
      ),
    ).toEqual(['order']);
    // enrich's names of un-anonymized addresses are data too.
    expect(
      codes(check(anon, 'conntrack() -> enrich() -> anonymize(orig.src, orig.dst) -> project(orig.src, names)')),
    ).toEqual(['capability_denied', 'capability_denied', 'order']);
  });

  it('anonymize counts as anonymized exactly what it rewrites: an object’s strings, a list’s entries', async () => {
    // Allowed: anonymize(orig) covers orig.src; and it must then have rewritten it (and orig.dst), not kept it.
    expect(codes(check(anon, 'conntrack() -> anonymize(orig) -> project(orig.src)'))).toEqual([]);
    expect(codes(check(anon, 'conntrack() -> anonymize(orig) -> project(orig)'))).toEqual([]);
    expect(codes(check(anon, 'conntrack() -> anonymize(orig.src) -> project(orig)'))).toEqual(['order']);
    const run = async (graph: string, feed: string, rec: object) => {
      const fg = new Flowgrab();
      const f = fg.create().populate(graph);
      await f.instantiate();
      await f.activate();
      const got = lastValueFrom(f.records$.pipe(toArray()));
      fakeFeed(feed).next(rec as never);
      fakeFeed(feed).complete();
      const [out] = (await got) as Record<string, never>[];
      await fg.close();
      return out;
    };
    const raw = ct(1);
    const o = (await run('fake(feed=anon-obj) -> anonymize(orig, key=k0123456789) -> project(orig)', 'anon-obj', raw))
      .orig as unknown as typeof raw.orig;
    expect(o.src).toBe(prefixPreserving(raw.orig.src, 'k0123456789'));
    expect(o.dst).toBe(prefixPreserving(raw.orig.dst, 'k0123456789'));
    expect(o.sport).toBe(raw.orig.sport);
    const dns = { type: 'dns', ts: 1, resolved: [{ ip: '203.0.113.5' }, { ip: '203.0.113.6' }], answers: [] };
    const d = await run(
      'fake(feed=anon-list, fields=any) -> anonymize(resolved.ip, key=k0123456789)',
      'anon-list',
      dns,
    );
    expect(d.resolved).toEqual([
      { ip: prefixPreserving('203.0.113.5', 'k0123456789') },
      { ip: prefixPreserving('203.0.113.6', 'k0123456789') },
    ]);
    expect(dns.resolved[0].ip).toBe('203.0.113.5'); // the source's record is not touched
  });

  it('a filter passing whole records needs every address anonymized (or redacted) before it', () => {
    const rule = { ...all, order: [{ filter: 'sample', requires: 'anonymize', position: 'before' as const }] };
    expect(check(rule, 'conntrack() -> anonymize(orig.src, orig.dst) -> sample(rate=0.1)').issues[0].message).toMatch(
      /reply\.src, reply\.dst reach it/,
    );
    expect(
      codes(check(rule, 'conntrack() -> anonymize(orig.src, orig.dst, reply.src, reply.dst) -> sample(rate=0.1)')),
    ).toEqual([]);
    expect(codes(check(rule, 'conntrack() -> redact(orig.src, orig.dst) -> sample(rate=0.1)'))).toEqual([]);
  });

  it("under a policy the key is the daemon's secret: a user's key is refused, the secret never shows", async () => {
    expect(check(anon, 'conntrack() -> anonymize(orig.src, key=publicknown123)').issues).toEqual([
      expect.objectContaining({
        code: 'param_denied',
        message: expect.stringMatching(/the key is the daemon's secret/),
      }),
    ]);
    expect(codes(check(anon, `conntrack() -> anonymize(orig.src, secret=${POLICY_SECRET})`))).toEqual(['param_denied']);
    const secret = 'the-daemons-own-secret-0123456789';
    const r = check(anon, 'conntrack() -> anonymize(orig.src)', { anonymizeKey: secret });
    expect(printGraph(r.graph)).toBe('conntrack() -> anonymize(orig.src, secret=policy, context="uid 6001")');
    const fg = new Flowgrab({ authorize: policyAuthorizer(policyOf(anon), me, { anonymizeKey: secret }) });
    const f = fg.create();
    f.populate('fake(feed=secret) -> anonymize(orig.src)');
    await f.instantiate();
    await f.activate();
    const got = lastValueFrom(f.records$.pipe(toArray()));
    fakeFeed('secret').next(ct(1));
    fakeFeed('secret').complete();
    const [out] = (await got) as { orig: { src: string } }[];
    // The user's own key for records of their choosing (fake() is not a kernel source): the secret under a context.
    const chosenKey = createHmac('sha256', secret).update('uid 6001 chosen').digest('hex');
    expect(out.orig.src).toBe(prefixPreserving(ct(1).orig.src, chosenKey));
    expect(out.orig.src).not.toBe(prefixPreserving(ct(1).orig.src, secret));
    await fg.close();
  });

  it('no oracle: records a user chooses, and other users, never share the pseudonyms of that user’s kernel records', () => {
    const secret = 'the-daemons-own-secret-0123456789';
    const grants = { ...anon, capabilities: ['firewall', 'capture-dns', 'read-files', 'nats'] as P['capabilities'] };
    const both = parsePolicy(
      JSON.stringify({ version: 1, principals: [6001, 6002].map((uid) => ({ who: { uid }, ...grants })) }),
    );
    const ctxOf = (who: Identity, text: string) => {
      const r = authorize(parseGraph(text), who, both, { anonymizeKey: secret });
      expect(r.issues).toEqual([]);
      return /context="([^"]*)"/.exec(printGraph(r.graph))?.[1];
    };
    const live = ctxOf(me, 'conntrack() -> anonymize(orig.src)');
    expect(live).toBe('uid 6001');
    expect(ctxOf(me, 'dns() -> anonymize(client)')).toBe(live);
    expect(ctxOf(me, 'replay(file=/tmp/probes) -> anonymize(orig.src)')).toBe('uid 6001 chosen');
    // Other routers' records (nats) have a key of their own: not the user's kernel records', nor their probes'.
    expect(ctxOf(me, 'nats(url="nats://127.0.0.1:4222") -> anonymize(src)')).toBe('uid 6001 exported');
    expect(ctxOf({ uid: 6002, gid: 6002 }, 'conntrack() -> anonymize(orig.src)')).toBe('uid 6002');
    // One flow with both: refused under an anonymize rule (one key for the probes and the kernel's records).
    expect(
      check(grants, '(conntrack() | replay(file=/tmp/probes)) -> anonymize(orig.src) -> project(orig.src)').issues,
    ).toEqual([
      expect.objectContaining({
        code: 'mixed_sources',
        message: expect.stringMatching(/records you choose may not share a flow/),
      }),
    ]);
    expect(
      check(grants, '(nats(url="nats://127.0.0.1:4222") | replay(file=/tmp/probes)) -> anonymize(src) -> project(src)')
        .issues,
    ).toEqual([
      expect.objectContaining({
        code: 'mixed_sources',
        message: expect.stringMatching(/records you choose may not share a flow with records other machines exported/),
      }),
    ]);
    // Nor may a user pick the context (another user's, or the kernel records').
    expect(codes(check(grants, 'replay(file=/tmp/probes) -> anonymize(orig.src, context="uid 6001")'))).toEqual([
      'param_denied',
    ]);
  });
});

describe('mark ranges', () => {
  const p = (marks?: string[]) => policyOf(marks ? { marks } : {}).principals[0];
  it('a claim must lie inside one of the ranges; without ranges anything but the whole space; root anything', () => {
    expect(markAllowed(p(['0x10/0xf0']), 0x10, 0xf0)).toBe(true);
    expect(markAllowed(p(['0x10/0xf0']), 0x13, 0xff)).toBe(true);
    expect(markAllowed(p(['0x10/0xf0']), 0x20, 0xff)).toBe(false);
    expect(markAllowed(p(['0x10/0xf0']), 0x10, 0x70)).toBe(false); // wider than the range
    expect(markAllowed(p(['0x10/0xf0']), 0, 0)).toBe(false);
    expect(markAllowed(p(['0x10', '0x20']), 0x20)).toBe(true);
    expect(markAllowed(p(), 0x7)).toBe(true);
    expect(markAllowed(p(), 0, 0)).toBe(false); // the lock-everyone-out claim
    expect(markAllowed(p(), 0x2, 0x3)).toBe(true); // overlaps with other claims are the queue's to refuse
    const root = parsePolicy(JSON.stringify({ version: 1, principals: [{ who: { uid: 0 } }] })).principals[0];
    expect(markAllowed(root, 0, 0)).toBe(true);
  });
});
