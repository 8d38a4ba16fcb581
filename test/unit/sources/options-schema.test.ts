/**
 * One schema per source: the library, the graph node and the docs read the
 * same defaults (they differed: conntrack events [] vs all three, arp
 * events false vs true), and bad options still name every issue.
 */
import { describe, expect, it } from 'vitest';
import '../../../src/filters/builtin.js';
import { lookupNode } from '../../../src/filters/registry.js';
import { parseArpOptions } from '../../../src/sources/arp/options.js';
import { parseConntrackOptions } from '../../../src/sources/conntrack/options.js';
import { parseDnsOptions } from '../../../src/sources/dns/options.js';
import { parseNfqueueOptions } from '../../../src/sources/nfqueue/options.js';

const graphDefaults = (name: string) => lookupNode(name)!.params.parse({}) as Record<string, unknown>;

describe('one schema per source', () => {
  it('conntrack: events default to all three unless dumping or polling, in the library', () => {
    expect(parseConntrackOptions({}).events).toEqual(['new', 'update', 'destroy']);
    expect(parseConntrackOptions({ dump: true }).events).toEqual([]);
    expect(parseConntrackOptions({ pollIntervalMs: 1000 }).events).toEqual([]);
    expect(parseConntrackOptions({ dump: true, events: ['destroy'] }).events).toEqual(['destroy']);
    expect(parseConntrackOptions({})).toMatchObject({
      dump: false,
      family: 'all',
      pollIntervalMs: 0,
      recvBufferBytes: 16 << 20,
      lossCheckMs: 200,
      reliable: false,
      batchedReceive: true,
    });
  });

  it('graph nodes take their defaults from the source schemas', () => {
    const ct = graphDefaults('conntrack');
    const lib = parseConntrackOptions({});
    expect(ct).toEqual({ dump: lib.dump, family: lib.family });
    // events left unset: the source's rule decides, as for a library caller.
    expect(ct.events).toBeUndefined();
    const arp = parseArpOptions({});
    expect(graphDefaults('arp')).toEqual({
      dump: arp.dump,
      events: arp.events,
      family: arp.family,
      all: arp.includeUnusable,
    });
    expect(arp).toMatchObject({ dump: true, events: false });
    const dns = parseDnsOptions({});
    expect(graphDefaults('dns')).toEqual({ group: dns.group, hooks: dns.hooks });
    const q = parseNfqueueOptions({ queue: 3 });
    expect(lookupNode('nfqueue')!.params.parse({ queue: 3 })).toEqual({
      queue: 3,
      verdict: 'accept',
      copyRange: q.copyRange,
    });
  });

  it('graph params stay strict and bounded as the source options are', () => {
    const ct = lookupNode('conntrack')!.params;
    expect(ct.safeParse({ zone: 70000 }).success).toBe(false);
    expect(ct.safeParse({ bogus: 1 }).success).toBe(false);
    expect(lookupNode('arp')!.params.safeParse({ netns: '../x' }).success).toBe(false);
    expect(lookupNode('dns')!.params.safeParse({ group: -1 }).success).toBe(false);
    expect(lookupNode('nfqueue')!.params.safeParse({}).success).toBe(false);
  });

  it('bad options: every issue at once, with its path, in one FG_ERR_INVALID_ARGUMENT', () => {
    let err: (Error & { code?: string }) | undefined;
    try {
      parseDnsOptions({ group: 70000, hooks: ['input', 'prerouting' as 'input'], netns: '../x', bogus: true } as never);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.code).toBe('FG_ERR_INVALID_ARGUMENT');
    expect(err?.message).toBe(
      'dns options: group: expected an integer from 0 to 65535, got 70000; ' +
        'netns: expected a network namespace name (letters, digits, _ . -), got "../x"; ' +
        'hooks.1: expected one of input, output, forward, got "prerouting"; ' +
        'bogus: unknown option',
    );
    // Undefined counts as absent, as before.
    expect(parseArpOptions({ netns: undefined, lossCheckMs: undefined })).toMatchObject({ lossCheckMs: 200 });
  });
});
