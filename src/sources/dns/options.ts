/** Options of the dns source: one zod schema gives the type, the defaults and the graph node's params. */
import { z } from 'zod';
import type { TransportFactory } from '../../netlink/transport.js';
import type { NoticeObserver } from '../notice.js';
import type { ReadyObserver } from '../ready.js';
import { bool, int, listOf, netnsName, oneOf, parseOptions } from '../schema.js';

export const DNS_HOOKS = ['input', 'output', 'forward'] as const;
/** A netfilter hook the DNS rules log at: input, output or forward. */
export type DnsHook = (typeof DNS_HOOKS)[number];
export const DnsHookName = oneOf(DNS_HOOKS);

export const DnsOptions = z.strictObject({
  /** NFLOG group the rules log to and the source binds (one reader per group and namespace). */
  group: int(0, 65535).default(53),
  netns: netnsName().optional(),
  /** Install the logging rules (table `inet flowgrab_dns_g<group>`) while subscribed. */
  installRules: bool().default(true),
  /** Where to capture: the router's own resolver (input, output) and traffic passing through (forward). */
  hooks: listOf(DnsHookName).default([...DNS_HOOKS]),
  /** Bytes of each packet the kernel copies. */
  copyRange: int(64, 0xffff).default(0xffff),
  recvBufferBytes: int(4096).default(16 << 20),
  /** Response-time matching window: queries older than this are forgotten. */
  queryTimeoutMs: int(100).default(30_000),
  /**
   * Read the NFLOG socket on a worker thread in batches (src/netlink/batched.ts); its close releases the
   * group before it returns. False: the `netlink` package's main-thread reader.
   */
  batchedReceive: bool().default(true),
});

export type DnsConfig = z.output<typeof DnsOptions>;

/** Options of dns(): namespace, NFLOG group, hooks, rules; plus notices, a transport (tests) and a readiness observer. */
export type DnsOptionsInput = z.input<typeof DnsOptions> & {
  notices?: NoticeObserver;
  transport?: TransportFactory;
  /** Told on subscribe what resolves once the subscription captures (see ReadyObserver). */
  ready?: ReadyObserver;
};

export function parseDnsOptions(options: DnsOptionsInput): DnsConfig {
  return parseOptions('dns', DnsOptions, options);
}
