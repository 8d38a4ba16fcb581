import { lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { authorize, safeAuthorize } from '../../../src/auth/authorize.js';
import { policyAuthorizer } from '../../../src/auth/flowgrab.js';
import { identityOfUid, identityOfUser } from '../../../src/auth/identity.js';
import { PolicyError, parsePolicy } from '../../../src/auth/load.js';
import type { Identity } from '../../../src/auth/policy.js';
import { parseGraph } from '../../../src/filters/parser.js';
import { printGraph } from '../../../src/filters/print.js';
import type { GraphSpec } from '../../../src/filters/spec.js';
import { Flowgrab } from '../../../src/flow/flowgrab.js';
import { fakeFeed } from '../../../src/testing/fake-source.js';
import { ct } from '../../helpers/records.js';

const DOC_POLICY = `{ "version": 1,
  "principals": [
    { "who": { "user": "alice" },
      "sources": ["conntrack", "dns", "fake"],
      "filters": ["match", "project", "count", "sample", "anonymize"],
      "params": { "sample.rate": { "max": 0.1 } },
      "order": [ { "filter": "project", "requires": "anonymize", "position": "before" } ],
      "scope": ["10.1.0.0/24", "fd00:1::/64"],
      "redact": ["mark"],
      "capabilities": ["firewall", "capture-dns"],
      "limits": { "flows": 2, "bufferRecords": 10000, "recordsPerSecond": 50000 } },
    { "who": { "uid": 1002 }, "sources": ["conntrack"], "filters": ["match"] },
    { "who": { "group": "netops" }, "sources": ["conntrack", "dns", "arp", "fake"], "filters": ["*"] } ] }`;

const policy = parsePolicy(DOC_POLICY);
const alice: Identity = { uid: 1001, gid: 1001, user: 'alice', groups: ['alice', 'netops'] };
const bob: Identity = { uid: 1002, gid: 1002, user: 'bob', groups: ['bob', 'netops'] };
const carol: Identity = { uid: 1003, gid: 1003, user: 'carol', groups: ['netops'] };
const nobody: Identity = { uid: 4242, gid: 4242 };
const g = (text: string): GraphSpec => parseGraph(text);
const codes = (r: { issues: { code: string }[] }) => r.issues.map((i) => i.code);

describe('policy files', () => {
  it('accept the documented form (README, docs/architecture.md), and reject unknown keys and bad values with path, expectation and what was there', () => {
    expect(policy.principals).toHaveLength(3);
    const bad = () =>
      parsePolicy('{"version":1,"principals":[{"who":{"user":"x"},"scope":["10.1.0.0/33"],"colour":"red"}]}', 'p.json');
    expect(bad).toThrow(PolicyError);
    const msg = (() => {
      try {
        bad();
      } catch (e) {
        return (e as PolicyError).problems.join('\n');
      }
    })();
    expect(msg).toMatch(
      /principals\[0\]\.scope\[0\]: an address prefix like 10\.1\.0\.0\/24 or fd00:1::\/64 \(got "10\.1\.0\.0\/33"\)/,
    );
    expect(msg).toMatch(/principals\[0\]: Unrecognized key: "colour"/);
    expect(() => parsePolicy('{"version": 1, "principals": [', 'p.json')).toThrow(/not JSON/);
  });
});

describe('authorize', () => {
  it('picks the first principal that matches, in file order; denies by default, except root', () => {
    // alice is also in netops, but her own entry comes first: no `top` for her.
    expect(codes(authorize(g('conntrack() -> top(by=orig.src, every=1s)'), alice, policy))).toEqual(['filter_denied']);
    expect(authorize(g('conntrack() -> top(by=orig.src, every=1s)'), carol, policy).allowed).toBe(true);
    expect(codes(authorize(g('dns()'), bob, policy))).toEqual(['source_denied']); // uid 1002 comes before netops
    expect(authorize(g('conntrack()'), nobody, policy)).toMatchObject({
      allowed: false,
      issues: [{ code: 'no_principal', message: 'uid 4242 is not in the policy: denied' }],
    });
    expect(authorize(g('conntrack() -> top(by=orig.src, every=1s)'), { uid: 0, gid: 0 }, policy).allowed).toBe(true);
  });

  it('returns every issue at once with its path into the graph', () => {
    const r = authorize(g('arp() | conntrack() -> dedupe(by=id, window=1s) -> sample(rate=0.5)'), alice, policy);
    expect(r.issues.map((i) => [i.code, i.path.join('.')])).toEqual([
      ['source_denied', 'root.branches.0'],
      ['filter_denied', 'root.branches.1.steps.1'],
      ['param_limit', 'root.branches.1.steps.2'],
    ]);
    expect(r.issues[2].message).toBe('sample: rate=0.5 is above your limit of 0.1');
    expect(codes(authorize(g('conntrack() -> sample(0.5)'), alice, policy))).toEqual(['param_limit']); // positional too
    expect(codes(authorize(g('conntrack() -> sample(by=id, rate=0.05)'), alice, policy))).toEqual([]);
  });

  it("checks FFPF's ordering rules on every path from a source (one dataflow pass)", () => {
    const r = authorize(
      g('conntrack() -> (anonymize(orig.src) -> project(orig.src) | match(proto == tcp) -> project(orig.dst))'),
      alice,
      policy,
    );
    expect(r.issues).toEqual([
      {
        code: 'order',
        path: ['root', 'steps', 1, 'branches', 1, 'steps', 1],
        message: 'filter `project` needs `anonymize` before it: orig.dst reaches it not anonymized on every path',
      },
    ]);
    const after = parsePolicy(
      JSON.stringify({
        version: 1,
        principals: [
          {
            who: { uid: 7 },
            sources: ['*'],
            filters: ['*'],
            order: [{ filter: 'match', requires: 'count', position: 'after' }],
          },
        ],
      }),
    );
    expect(
      codes(authorize(g('conntrack() -> match(proto == tcp) -> count(every=1s)'), { uid: 7, gid: 7 }, after)),
    ).toEqual([]);
    expect(codes(authorize(g('conntrack() -> match(proto == tcp)'), { uid: 7, gid: 7 }, after))).toEqual(['order']);
  });

  it('inserts the scope and redaction right after every source and the rate limit at the end', () => {
    const r = authorize(g('conntrack() | dns() -> match(kind == query)'), alice, policy);
    expect(printGraph(r.graph)).toBe(
      '(conntrack() -> scope(cidrs=[10.1.0.0/24, fd00:1::/64]) -> redact(fields=[mark]) | (dns() -> scope(cidrs=[10.1.0.0/24, fd00:1::/64]) -> redact(fields=[mark])) -> match(kind == query)) -> ratelimit(rate=50000)',
    );
  });

  it('safeAuthorize never throws', () => {
    const r = safeAuthorize({ version: 1, root: null } as unknown as GraphSpec, alice, policy);
    expect(r).toMatchObject({ allowed: false, issues: [{ code: 'internal' }] });
  });

  it('reads identities from /etc/passwd and /etc/group', () => {
    expect(identityOfUid(0)).toMatchObject({ uid: 0, user: 'root', groups: expect.arrayContaining(['root']) });
    expect(identityOfUser('root')).toMatchObject({ uid: 0, gid: 0 });
    expect(identityOfUser('no-such-user-here')).toBeUndefined();
  });
});

describe('the policy enforced in a Flowgrab', () => {
  it('a scoped user never receives a record outside the scope, even when asking for everything; redacted fields are gone', async () => {
    const fg = new Flowgrab({ authorize: policyAuthorizer(policy, alice) });
    const f = fg.create();
    f.populate('fake(feed=scoped)');
    await f.instantiate();
    await f.activate();
    const got = lastValueFrom(f.records$.pipe(toArray()));
    const inside = ct(1, { orig: { src: '10.1.0.7', dst: '8.8.8.8', sport: 1, dport: 53 }, mark: 7 });
    const outside = ct(2, {
      orig: { src: '10.2.0.7', dst: '8.8.8.8', sport: 1, dport: 53 },
      reply: { src: '8.8.8.8', dst: '10.2.0.7' },
    });
    const v6 = ct(3, {
      family: 'ipv6',
      orig: { src: 'fd00:1::5', dst: '2001:db8::1' },
      reply: { src: '2001:db8::1', dst: 'fd00:1::5' },
    });
    for (const r of [inside, outside, v6]) fakeFeed('scoped').next(r);
    fakeFeed('scoped').complete();
    const out = await got;
    expect(out.map((r) => r.id)).toEqual([1, 3]);
    expect(out[0]).not.toHaveProperty('mark');
    await fg.close();
  });

  it('limits concurrent flows and buffer sizes', async () => {
    const fg = new Flowgrab({ authorize: policyAuthorizer(policy, alice) });
    for (let i = 0; i < 2; i++) {
      const f = fg.create();
      f.populate('fake(feed=limits)');
      await f.instantiate();
    }
    const third = fg.create();
    third.populate('fake(feed=limits)');
    await expect(third.instantiate()).rejects.toMatchObject({ issues: [{ code: 'flow_limit' }] });
    await fg.close();
    const big = new Flowgrab({ authorize: policyAuthorizer(policy, alice) }).create({ bufferRecords: 20_000 });
    big.populate('fake(feed=limits)');
    await expect(big.instantiate()).rejects.toMatchObject({ issues: [{ code: 'buffer_limit' }] });
  });
});
