/** Options of the nfqueue source, validated by hand (options.ts explains why not zod). */
import { FlowgrabError } from '../../errors.js';
import type { TransportFactory } from '../../netlink/transport.js';
import { type QueueRulesSpec, validateMatchArgs } from '../firewall/iptables.js';
import type { NoticeObserver } from '../notice.js';
import { bool, type Check, int, listOf, NETNS_NAME, oneOf, validateOptions } from '../options.js';

export type VerdictName = 'accept' | 'drop' | 'repeat';
export type QueueChain = QueueRulesSpec['chains'][number];

export interface NfqueueRules {
  /** Built-in chains of the filter table that jump to the queue: OUTPUT (this host), INPUT, FORWARD (a router). */
  chains: QueueChain[];
  /** Extra iptables match arguments, one argv word each, e.g. ['-p', 'tcp', '--dport', '443']. */
  match?: string[];
  /** Default both. */
  families?: ('ipv4' | 'ipv6')[];
}

export interface NfqueueConfig {
  /** The queue number the rules send packets to (one reader per queue and namespace). */
  queue: number;
  /** Bytes of each packet copied to us (0xffff = whole packets; 0 = metadata only, no headers). */
  copyRange: number;
  /** Packets the kernel holds for us at most; beyond that failOpen decides. */
  maxLen: number;
  /** Accept, rather than drop, what the queue cannot take (queue full, socket buffer full). */
  failOpen: boolean;
  netns?: string;
  /** Install iptables rules queueing to `queue` while subscribed; without, your own rules must. */
  rules?: NfqueueRules;
  /** A packet without a verdict after this long gets `defaultVerdict` (and a notice). */
  verdictTimeoutMs: number;
  /** For timed-out packets and those still pending at close. */
  defaultVerdict: 'accept' | 'drop';
  /** Receive buffer; default sized to hold maxLen packets of copyRange bytes. */
  recvBufferBytes?: number;
  /** Look up interface names for indev/outdev (one `ip link` per unknown ifindex, at most every 2 s). */
  interfaceNames: boolean;
}

export type NfqueueOptionsInput = Partial<Omit<NfqueueConfig, 'queue'>> & {
  queue: number;
  notices?: NoticeObserver;
  /** The kernel seam; tests pass the fake from `flowgrab/testing`. */
  transport?: TransportFactory;
};

const rulesCheck: Check = (v, path, issues) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    issues.push(`${path}: expected { chains, match?, families? }, got ${JSON.stringify(v)}`);
    return;
  }
  const r = v as Record<string, unknown>;
  for (const k of Object.keys(r))
    if (!['chains', 'match', 'families'].includes(k)) issues.push(`${path}.${k}: unknown option`);
  if (!Array.isArray(r.chains) || r.chains.length === 0) issues.push(`${path}.chains: expected at least one chain`);
  else listOf(oneOf('INPUT', 'OUTPUT', 'FORWARD'))(r.chains, `${path}.chains`, issues);
  if (r.families !== undefined) listOf(oneOf('ipv4', 'ipv6'))(r.families, `${path}.families`, issues);
  if (r.match !== undefined) {
    if (!Array.isArray(r.match) || !r.match.every((x) => typeof x === 'string'))
      issues.push(`${path}.match: expected a list of strings`);
    else for (const problem of validateMatchArgs(r.match)) issues.push(`${path}.match: ${problem}`);
  }
};

const SPEC = {
  queue: int(0, 65535),
  copyRange: int(0, 0xffff),
  maxLen: int(1, 1 << 20),
  failOpen: bool,
  netns: NETNS_NAME,
  rules: rulesCheck,
  verdictTimeoutMs: int(1, 3_600_000),
  defaultVerdict: oneOf('accept', 'drop'),
  recvBufferBytes: int(4096, 1 << 30),
  interfaceNames: bool,
};

const DEFAULTS: Partial<NfqueueConfig> = {
  copyRange: 0xffff,
  maxLen: 1024,
  failOpen: true,
  verdictTimeoutMs: 5000,
  defaultVerdict: 'accept',
  interfaceNames: true,
};

/** Validates options (every issue at once, a missing queue included) and fills in the defaults. */
export function parseNfqueueOptions(options: NfqueueOptionsInput): NfqueueConfig {
  const { notices: _n, transport: _t, ...rest } = options ?? ({} as NfqueueOptionsInput);
  if (rest.queue !== undefined) return validateOptions<NfqueueConfig>('nfqueue', rest, SPEC, DEFAULTS);
  const missing = 'queue: required, an integer from 0 to 65535';
  try {
    validateOptions<NfqueueConfig>('nfqueue', rest, SPEC, DEFAULTS);
  } catch (err) {
    const others = (err as Error).message.replace(/^nfqueue options: /, '');
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `nfqueue options: ${missing}; ${others}`, { op: 'nfqueue' });
  }
  throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `nfqueue options: ${missing}`, { op: 'nfqueue' });
}

/** Receive buffer that holds a full queue: maxLen × (copy + per-message overhead), 1–256 MiB. */
export function defaultRecvBuffer(c: NfqueueConfig): number {
  const per = Math.min(c.copyRange || 0, 0xffff) + 512;
  return Math.min(256 << 20, Math.max(1 << 20, c.maxLen * per));
}
