/** Options of the dns source. */
import type { TransportFactory } from '../../netlink/transport.js';
import type { NoticeObserver } from '../notice.js';
import { bool, int, listOf, NETNS_NAME, oneOf, validateOptions } from '../options.js';

export type DnsHook = 'input' | 'output' | 'forward';

export interface DnsConfig {
  /** NFLOG group the rules log to and the source binds (one reader per group and namespace). */
  group: number;
  netns?: string;
  /** Install the logging rules (table `inet flowgrab_dns_g<group>`) while subscribed. */
  installRules: boolean;
  /** Where to capture: the router's own resolver (input, output) and traffic passing through (forward). */
  hooks: DnsHook[];
  /** Bytes of each packet the kernel copies. */
  copyRange: number;
  recvBufferBytes: number;
  /** Response-time matching window: queries older than this are forgotten. */
  queryTimeoutMs: number;
}

export type DnsOptionsInput = Partial<DnsConfig> & { notices?: NoticeObserver; transport?: TransportFactory };

const SPEC = {
  group: int(0, 65535),
  netns: NETNS_NAME,
  installRules: bool,
  hooks: listOf(oneOf('input', 'output', 'forward')),
  copyRange: int(64, 0xffff),
  recvBufferBytes: int(4096),
  queryTimeoutMs: int(100),
};

const DEFAULTS: DnsConfig = {
  group: 53,
  installRules: true,
  hooks: ['input', 'output', 'forward'],
  copyRange: 0xffff,
  recvBufferBytes: 16 << 20,
  queryTimeoutMs: 30_000,
};

export function parseDnsOptions(options: DnsOptionsInput): DnsConfig {
  const { notices: _n, transport: _t, ...rest } = options;
  return validateOptions<DnsConfig>('dns', rest, SPEC, DEFAULTS);
}
