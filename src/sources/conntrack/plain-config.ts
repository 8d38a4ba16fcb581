/**
 * The conntrack config from options known to be valid, without zod. zod
 * costs ~150 ms of CPU to load, more than a short `flowgrab conntrack
 * --dump` spends on anything else: the CLI builds its config here and loads
 * the schema (options.ts) only when this check refuses, so that the schema
 * says what is wrong, every issue at once.
 */

import { MAX_TIMER_MS } from '../../util/timer.js';
import { CONNTRACK_DEFAULTS, CT_EVENT_NAMES, defaultEvents } from './config.js';
import type { ConntrackConfig, ConntrackOptionsInput } from './options.js';

const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
const BOOL = (v: unknown) => typeof v === 'boolean';

/** Each option's check; the same bounds as the schema's (a property test holds the two equal). */
const CHECKS: Record<string, (v: unknown) => boolean> = {
  dump: BOOL,
  events: (v) => Array.isArray(v) && v.every((e) => (CT_EVENT_NAMES as readonly unknown[]).includes(e as string)),
  family: (v) => v === 'ipv4' || v === 'ipv6' || v === 'all',
  zone: (v) => isInt(v, 0, 65535),
  mark: (v) => isInt(v, 0, 0xffffffff),
  markMask: (v) => isInt(v, 0, 0xffffffff),
  netns: (v) => typeof v === 'string' && /^[A-Za-z0-9_.-]+$/.test(v),
  pollIntervalMs: (v) => isInt(v, 0, MAX_TIMER_MS),
  recvBufferBytes: (v) => isInt(v, 4096),
  lossCheckMs: (v) => isInt(v, 10),
  setEventsSysctl: BOOL,
  setAccounting: BOOL,
  reliable: BOOL,
  batchedReceive: BOOL,
};
/** Carried beside the options, never checked (as in schema.ts). */
const HOOKS = new Set(['notices', 'transport', 'ready']);

/**
 * The config for `options` when every option is known and valid (undefined
 * values count as absent, hooks are left out), as parseConntrackOptions
 * would give it; otherwise undefined, and parseConntrackOptions says why.
 */
export function plainConntrackConfig(options: ConntrackOptionsInput): ConntrackConfig | undefined {
  const cfg: Record<string, unknown> = { ...CONNTRACK_DEFAULTS };
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined || HOOKS.has(k)) continue;
    const check = Object.hasOwn(CHECKS, k) ? CHECKS[k] : undefined;
    if (!check?.(v)) return undefined;
    cfg[k] = k === 'events' ? [...(v as string[])] : v;
  }
  const c = cfg as Omit<ConntrackConfig, 'events'> & { events?: ConntrackConfig['events'] };
  return { ...c, events: c.events ?? defaultEvents(c.dump, c.pollIntervalMs) };
}
