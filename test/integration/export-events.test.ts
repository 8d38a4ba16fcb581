/**
 * Which conntrack events the exporter follows: DESTROY alone when the kernel
 * timestamps flows (the DESTROY then carries counters and start/stop times),
 * NEW too when it does not (start times come from NEW); and no periodic
 * dumps without an active timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conntrackEvents, pollFor } from '../../src/export/exporter.js';
import { Netns, uniqueId } from '../../src/testing/lab/index.js';

describe('export: events and dumps followed', () => {
  let ns: Netns;
  beforeAll(async () => {
    ns = await Netns.create(uniqueId('fgexev'));
  });
  afterAll(async () => {
    await ns?.remove();
  });

  it('DESTROY only when nf_conntrack_timestamp is on (or set by --set-sysctls), NEW and DESTROY when it is off', async () => {
    await ns.sysctl('net.netfilter.nf_conntrack_timestamp', 0);
    expect(conntrackEvents(ns.name, false)).toEqual(['new', 'destroy']);
    expect(conntrackEvents(ns.name, true)).toEqual(['destroy']);
    await ns.sysctl('net.netfilter.nf_conntrack_timestamp', 1);
    expect(conntrackEvents(ns.name, false)).toEqual(['destroy']);
  });

  it('dumps as often as the active timeout (at least 1 s apart), none without one', () => {
    expect(pollFor(0)).toBe(0);
    expect(pollFor(200)).toBe(1000);
    expect(pollFor(60_000)).toBe(60_000);
  });
});
