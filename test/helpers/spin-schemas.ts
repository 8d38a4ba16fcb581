/**
 * SPIN's MQTT message formats (docs/spin-protocol.md §2.3–2.4, §3.1) as zod
 * schemas, strict so that an extra or misspelt key fails.
 */
import { z } from 'zod';

const int = z.number().int();

export const envelopeSchema = z.strictObject({
  command: z.string(),
  argument: z.string().optional(),
  result: z.unknown().optional(),
});

export const flowSchema = z.strictObject({
  from: int.positive(),
  to: int.positive(),
  protocol: int.min(0).max(255),
  from_port: int.min(0).max(65_535),
  to_port: int.min(0).max(65_535),
  size: int.min(0),
  count: int.min(0),
});

export const trafficSchema = z.strictObject({
  command: z.literal('traffic'),
  argument: z.literal(''),
  result: z.strictObject({
    flows: z.array(flowSchema).min(1),
    timestamp: int.positive(),
    total_size: int.min(0),
    total_count: int.min(0),
  }),
});

export const nodeSchema = z.strictObject({
  id: int.positive(),
  name: z.string().max(128).optional(),
  mac: z
    .string()
    .regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/)
    .optional(),
  is_blocked: z.literal(true).optional(),
  is_excepted: z.literal(true).optional(),
  lastseen: int.positive(),
  ips: z.array(z.string()),
  domains: z.array(z.string().endsWith('.')),
});

export const nodeInfoSchema = z.strictObject({ command: z.literal('nodeInfo'), result: nodeSchema });

/** The key order spind emits node objects in. */
export const NODE_KEY_ORDER = ['id', 'name', 'mac', 'is_blocked', 'is_excepted', 'lastseen', 'ips', 'domains'];

export function inSpinKeyOrder(node: object): boolean {
  const keys = Object.keys(node);
  const ranks = keys.map((k) => NODE_KEY_ORDER.indexOf(k));
  return ranks.every((r, i) => r >= 0 && (i === 0 || r > ranks[i - 1]));
}
