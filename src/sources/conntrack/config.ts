/**
 * What the conntrack source's options default to, without zod: the schema
 * (options.ts) and the plain check (plain-config.ts) share them.
 */

export const CT_EVENT_NAMES = ['new', 'update', 'destroy'] as const;

/** The defaults of the options (the zod schema in options.ts uses these). */
export const CONNTRACK_DEFAULTS = {
  dump: false,
  family: 'all',
  pollIntervalMs: 0,
  recvBufferBytes: 16 << 20,
  lossCheckMs: 200,
  setEventsSysctl: false,
  setAccounting: false,
  reliable: false,
  batchedReceive: true,
} as const;

/** What `ConntrackConfig.events` is when none are given: all three, unless dumping or polling. */
export function defaultEvents(dump: boolean, pollIntervalMs: number): (typeof CT_EVENT_NAMES)[number][] {
  return dump || pollIntervalMs > 0 ? [] : [...CT_EVENT_NAMES];
}
