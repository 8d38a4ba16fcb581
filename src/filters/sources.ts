/** The kernel sources as graph nodes: conntrack(…), dns(…), replay(file=…). */
import { closeSync, readSync } from 'node:fs';
import { Observable } from 'rxjs';
import { z } from 'zod';
import { natsSourceDef } from '../export/nats/graph.js';
import { isPrefix, prefixMatcher } from '../netlink/prefix.js';
import { ArpOptions } from '../sources/arp/options.js';
import { NeighRecord } from '../sources/arp/record.js';
import { arp } from '../sources/arp/source.js';
import { ConntrackOptions, CtEvent } from '../sources/conntrack/options.js';
import { ConntrackRecord } from '../sources/conntrack/record.js';
import { conntrack } from '../sources/conntrack/source.js';
import { DNS_HOOKS, DnsHookName, DnsOptions } from '../sources/dns/options.js';
import { DnsRecord } from '../sources/dns/record.js';
import { dns } from '../sources/dns/source.js';
import { NfqueueOptions } from '../sources/nfqueue/options.js';
import { PacketRecord } from '../sources/nfqueue/record.js';
import { nfqueue } from '../sources/nfqueue/source.js';
import { openRegular } from '../util/regular-file.js';
import { ANY_FIELDS, catalogOf, type FieldCatalog } from './fields.js';
import { Duration, listOf } from './params.js';
import { defineSource } from './registry.js';
import { replayOpensAsProcess, replayRecords } from './replay.js';

export const RECORD_FIELDS: Record<string, FieldCatalog> = {
  conntrack: catalogOf(ConntrackRecord),
  dns: catalogOf(DnsRecord),
  arp: catalogOf(NeighRecord),
  nfqueue: catalogOf(PacketRecord),
};

/** The graph parameters of `nfqueue()` (what graph.source() takes, typed). */
export const NfqueueParams = z.strictObject({
  queue: NfqueueOptions.shape.queue,
  verdict: z.enum(['accept', 'drop']).default('accept'),
  copyRange: NfqueueOptions.shape.copyRange,
  netns: NfqueueOptions.shape.netns,
  /**
   * Only packets with an address inside these prefixes are emitted and given `verdict`; the others are accepted
   * unseen. A policy's scope is put here (auth/authorize.ts): the scope() after the source hides packets, and a
   * scoped user's verdict=drop must not decide for packets outside it.
   */
  scope: z.array(z.string().refine(isPrefix, 'an address prefix')).min(1).optional(),
});

export const nfqueueSource = defineSource({
  name: 'nfqueue',
  description:
    'packets queued by an NFQUEUE rule, as a monitor: nfqueue(queue=3, verdict=accept, netns=NAME); a graph gives every packet this verdict as it is emitted',
  // The source's own option schemas; `verdict` is the graph's (what to decide for every packet).
  params: NfqueueParams,
  positional: (args) => ({ queue: args[0] }),
  // Even `accept` decides for packets other users' rules queued: a verdict is a verdict.
  capabilities: () => ['verdicts'],
  fields: RECORD_FIELDS.nfqueue,
  create: (p, ctx) => {
    const inside = p.scope?.map((c) => prefixMatcher(c));
    const inScope = (pkt: { ip?: { src?: string; dst?: string } }) =>
      !inside || inside.some((m) => m(pkt.ip?.src) || m(pkt.ip?.dst));
    return new Observable((sub) =>
      nfqueue({
        queue: p.queue,
        copyRange: p.copyRange,
        netns: p.netns,
        notices: ctx.notices,
        ready: ctx.ready,
      }).subscribe({
        next: (pkt) => {
          const mine = inScope(pkt);
          if (mine) sub.next(pkt as never);
          try {
            pkt.verdict(mine ? p.verdict : 'accept');
          } catch {
            // Another subscriber of the same queue decided first: the first verdict wins.
          }
        },
        error: (e) => sub.error(e),
        complete: () => sub.complete(),
      }),
    );
  },
});

/** The graph parameters of `arp()` (what graph.source() takes, typed). */
export const ArpParams = z.strictObject({
  dump: ArpOptions.shape.dump,
  events: ArpOptions.shape.events,
  family: ArpOptions.shape.family,
  all: ArpOptions.shape.includeUnusable,
  netns: ArpOptions.shape.netns,
});

export const arpSource = defineSource({
  name: 'arp',
  description:
    'neighbours (ARP / IPv6 ND) with bridge ports: arp(dump=true, events=false, family=all, all=false, netns=NAME)',
  // The source's own option schemas (and defaults), in the graph's order; `all` is the graph's name for includeUnusable.
  params: ArpParams,
  fields: RECORD_FIELDS.arp,
  create: (p, ctx) =>
    arp({
      dump: p.dump,
      events: p.events,
      family: p.family,
      includeUnusable: p.all,
      netns: p.netns,
      notices: ctx.notices,
      ready: ctx.ready,
    }),
});

/** The graph parameters of `conntrack()` (what graph.source() takes, typed). */
export const ConntrackParams = z.strictObject({
  events: listOf(CtEvent).optional(),
  family: ConntrackOptions.shape.family,
  dump: ConntrackOptions.shape.dump,
  poll: Duration.optional(),
  zone: ConntrackOptions.shape.zone,
  mark: ConntrackOptions.shape.mark,
  netns: ConntrackOptions.shape.netns,
});

export const conntrackSource = defineSource({
  name: 'conntrack',
  description:
    'connection tracking: conntrack(events=[new,destroy], family=ipv4, dump=true, poll=10s, netns=NAME); events default to all three unless dump or poll is given',
  // The source's own option schemas and defaults (events unset: the source's rule); graph syntax for lists and durations.
  params: ConntrackParams,
  fields: RECORD_FIELDS.conntrack,
  create: (p, ctx) =>
    conntrack({
      events: p.events,
      family: p.family,
      dump: p.dump,
      pollIntervalMs: p.poll ?? 0,
      zone: p.zone,
      mark: p.mark,
      netns: p.netns,
      notices: ctx.notices,
      ready: ctx.ready,
    }),
});

/** The graph parameters of `dns()` (what graph.source() takes, typed). */
export const DnsParams = z.strictObject({
  netns: DnsOptions.shape.netns,
  group: DnsOptions.shape.group,
  hooks: listOf(DnsHookName).default([...DNS_HOOKS]),
});

export const dnsSource = defineSource({
  name: 'dns',
  description: 'DNS queries and responses through NFLOG: dns(netns=NAME, group=53, hooks=[input,output,forward])',
  params: DnsParams,
  // Installs nftables log rules in the namespace and reads its DNS traffic.
  capabilities: () => ['firewall', 'capture-dns'],
  fields: RECORD_FIELDS.dns,
  create: (p, ctx) => dns({ netns: p.netns, group: p.group, hooks: p.hooks, notices: ctx.notices, ready: ctx.ready }),
});

// Records other machines exported to NATS JetStream (src/export/nats; policy capability `nats`).
export const natsSource = defineSource(natsSourceDef);

/** Fields of a recording: those of the sources its header names. */
function recordedFields(file: string): FieldCatalog {
  if (!replayOpensAsProcess()) return ANY_FIELDS;
  try {
    // Only a regular file (openRegular: a FIFO or a device must never block or flood the checker), and only its
    // first 64 KiB.
    const f = openRegular(file);
    if (!f) return ANY_FIELDS;
    const buf = Buffer.alloc(65536);
    let n: number;
    try {
      n = readSync(f.fd, buf, 0, buf.length, 0);
    } finally {
      closeSync(f.fd);
    }
    const header = JSON.parse(buf.toString('utf8', 0, n).split('\n', 1)[0]) as { sources?: { name: string }[] };
    const cats = (header.sources ?? []).map((s) => RECORD_FIELDS[s.name]).filter(Boolean);
    if (cats.length === 0) return ANY_FIELDS;
    return new Map(cats.flatMap((c) => [...c]));
  } catch {
    return ANY_FIELDS;
  }
}

export const replaySource = defineSource({
  name: 'replay',
  description:
    'records from a file made by `flowgrab record`: replay(file=PATH, speed=1) (speed 0 = as fast as possible)',
  params: z.object({ file: z.string().min(1), speed: z.number().min(0).default(0) }).strict(),
  positional: (args) => ({ file: args[0] }),
  capabilities: () => ['read-files'],
  fields: (p) => recordedFields(p.file),
  replayed: true,
  create: (p, ctx) => replayRecords(p.file, p.speed, ctx.scheduler),
});
