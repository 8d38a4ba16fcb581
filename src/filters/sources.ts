/** The kernel sources as graph nodes: conntrack(…), dns(…), replay(file=…). */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { Observable } from 'rxjs';
import { z } from 'zod';
import { natsSourceDef } from '../export/nats/graph.js';
import { NeighRecord } from '../sources/arp/record.js';
import { arp } from '../sources/arp/source.js';
import { ConntrackRecord } from '../sources/conntrack/record.js';
import { conntrack } from '../sources/conntrack/source.js';
import { DnsRecord } from '../sources/dns/record.js';
import { dns } from '../sources/dns/source.js';
import { PacketRecord } from '../sources/nfqueue/record.js';
import { nfqueue } from '../sources/nfqueue/source.js';
import { ANY_FIELDS, catalogOf, type FieldCatalog } from './fields.js';
import { Duration, listOf } from './params.js';
import { defineSource } from './registry.js';
import { replayOpensAsProcess, replayRecords } from './replay.js';

const Netns = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a network namespace name');

export const RECORD_FIELDS: Record<string, FieldCatalog> = {
  conntrack: catalogOf(ConntrackRecord),
  dns: catalogOf(DnsRecord),
  arp: catalogOf(NeighRecord),
  nfqueue: catalogOf(PacketRecord),
};

export const nfqueueSource = defineSource({
  name: 'nfqueue',
  description:
    'packets queued by an NFQUEUE rule, as a monitor: nfqueue(queue=3, verdict=accept, netns=NAME); a graph gives every packet this verdict as it is emitted',
  params: z
    .object({
      queue: z.number().int().min(0).max(65535),
      verdict: z.enum(['accept', 'drop']).default('accept'),
      copyRange: z.number().int().min(0).max(0xffff).default(0xffff),
      netns: Netns.optional(),
    })
    .strict(),
  positional: (args) => ({ queue: args[0] }),
  // Even `accept` decides for packets other users' rules queued: a verdict is a verdict.
  capabilities: () => ['verdicts'],
  fields: RECORD_FIELDS.nfqueue,
  create: (p, ctx) =>
    new Observable((sub) =>
      nfqueue({ queue: p.queue, copyRange: p.copyRange, netns: p.netns, notices: ctx.notices }).subscribe({
        next: (pkt) => {
          sub.next(pkt as never);
          try {
            pkt.verdict(p.verdict);
          } catch {
            // Another subscriber of the same queue decided first: the first verdict wins.
          }
        },
        error: (e) => sub.error(e),
        complete: () => sub.complete(),
      }),
    ),
});

export const arpSource = defineSource({
  name: 'arp',
  description: 'neighbours (ARP / IPv6 ND) with bridge ports: arp(dump=true, events=true, family=all, netns=NAME)',
  params: z
    .object({
      dump: z.boolean().default(true),
      events: z.boolean().default(true),
      family: z.enum(['ipv4', 'ipv6', 'all']).default('all'),
      all: z.boolean().default(false),
      netns: Netns.optional(),
    })
    .strict(),
  fields: RECORD_FIELDS.arp,
  create: (p, ctx) =>
    arp({
      dump: p.dump,
      events: p.events,
      family: p.family,
      includeUnusable: p.all,
      netns: p.netns,
      notices: ctx.notices,
    }),
});

export const conntrackSource = defineSource({
  name: 'conntrack',
  description: 'connection tracking: conntrack(events=[new,destroy], family=ipv4, dump=true, poll=10s, netns=NAME)',
  params: z
    .object({
      events: listOf(z.enum(['new', 'update', 'destroy'])).default(['new', 'update', 'destroy']),
      family: z.enum(['ipv4', 'ipv6', 'all']).default('all'),
      dump: z.boolean().default(false),
      poll: Duration.optional(),
      zone: z.number().int().min(0).max(65535).optional(),
      mark: z.number().int().min(0).max(0xffffffff).optional(),
      netns: Netns.optional(),
    })
    .strict(),
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
    }),
});

export const dnsSource = defineSource({
  name: 'dns',
  description: 'DNS queries and responses through NFLOG: dns(netns=NAME, group=53, hooks=[input,output,forward])',
  params: z
    .object({
      netns: Netns.optional(),
      group: z.number().int().min(0).max(65535).default(53),
      hooks: listOf(z.enum(['input', 'output', 'forward'])).default(['input', 'output', 'forward']),
    })
    .strict(),
  // Installs nftables log rules in the namespace and reads its DNS traffic.
  capabilities: () => ['firewall', 'capture-dns'],
  fields: RECORD_FIELDS.dns,
  create: (p, ctx) => dns({ netns: p.netns, group: p.group, hooks: p.hooks, notices: ctx.notices }),
});

// Records other machines exported to NATS JetStream (src/export/nats; policy capability `nats`).
export const natsSource = defineSource(natsSourceDef);

/** Fields of a recording: those of the sources its header names. */
function recordedFields(file: string): FieldCatalog {
  if (!replayOpensAsProcess()) return ANY_FIELDS;
  try {
    // Only a regular file, and only its first 64 KiB: a FIFO or a device must never block or flood the checker.
    if (!statSync(file).isFile()) return ANY_FIELDS;
    const fd = openSync(file, 'r');
    const buf = Buffer.alloc(65536);
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, 0);
    } finally {
      closeSync(fd);
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
  create: (p, ctx) => replayRecords(p.file, p.speed, ctx.scheduler),
});
