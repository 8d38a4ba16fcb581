/**
 * `nats(url="nats://…", stream=…, subject="flowgrab.>", durable=NAME, ackWait=30s)`
 * as a graph source. Policy: a capability of its own, `nats` (it reads
 * other machines' records, not this kernel): the daemon's policy must name
 * the source `nats` for a user to get it.
 */
import { z } from 'zod';
import { catalogOf, type FieldCatalog } from '../../filters/fields.js';
import { Duration } from '../../filters/params.js';
import type { SourceDef } from '../../filters/registry.js';
import { NeighRecord } from '../../sources/arp/record.js';
import { ConntrackRecord } from '../../sources/conntrack/record.js';
import { DnsRecord } from '../../sources/dns/record.js';
import { ExportFlow } from '../flow.js';
import { natsRecords } from './source.js';

/** The union of every record kind an exporter stores: a path of any of them may be matched. */
function unionFields(): FieldCatalog {
  const out: FieldCatalog = new Map();
  for (const schema of [ExportFlow, ConntrackRecord, DnsRecord, NeighRecord])
    for (const [path, info] of catalogOf(schema)) {
      const had = out.get(path);
      out.set(path, had && had.kind !== info.kind ? { kind: 'any', many: had.many || info.many } : info);
    }
  return out;
}

const Name = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a NATS name: 1..64 of A-Z a-z 0-9 _ -');

const params = z
  .object({
    url: z.string().min(1).max(4096),
    stream: Name.default('flowgrab'),
    subject: z
      .string()
      .regex(/^\S{1,256}$/, 'a NATS subject')
      .optional(),
    durable: Name.optional(),
    ackWait: Duration.optional(),
    maxAckPending: z.number().int().min(1).max(1_000_000).default(1000),
  })
  .strict();

export const natsSourceDef: Omit<SourceDef<z.infer<typeof params>>, 'kind'> = {
  name: 'nats',
  // Network connections and durable consumers on a server the policy never saw: never granted by "*".
  capabilities: () => ['nats'],
  description:
    'records stored in NATS JetStream by `flowgrab export --nats`: nats(url="nats://host:4222", stream=flowgrab, subject="flowgrab.>", durable=NAME, ackWait=30s)',
  params,
  positional: (args) => ({ url: args[0] }),
  fields: unionFields(),
  create: (p, ctx) =>
    natsRecords({
      servers: p.url,
      stream: p.stream,
      subject: p.subject,
      durable: p.durable,
      ackWaitMs: p.ackWait,
      maxAckPending: p.maxAckPending,
      notices: ctx.notices,
    }),
};
