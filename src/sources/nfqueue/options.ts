/** Options of the nfqueue source: one zod schema gives the type, the defaults and the graph node's params. */
import { z } from 'zod';
import type { TransportFactory } from '../../netlink/transport.js';
import { type QueueRulesSpec, validateMatchArgs } from '../firewall/iptables.js';
import type { NoticeObserver } from '../notice.js';
import type { ReadyObserver } from '../ready.js';
import { bool, int, listOf, netnsName, oneOf, parseOptions } from '../schema.js';

/** A verdict for a queued packet. */
export type VerdictName = 'accept' | 'drop' | 'repeat';
/** A chain whose traffic queue rules send to the queue (input, output, forward …). */
export type QueueChain = QueueRulesSpec['chains'][number];

const chains = ['INPUT', 'OUTPUT', 'FORWARD'] as const satisfies readonly QueueChain[];

export const NfqueueRulesOptions = z.strictObject(
  {
    /** Built-in chains of the filter table that jump to the queue: OUTPUT (this host), INPUT, FORWARD (a router). */
    chains: listOf(oneOf(chains)).min(1, { error: 'expected at least one chain' }),
    /** Extra iptables match arguments, one argv word each, e.g. ['-p', 'tcp', '--dport', '443']. */
    match: z
      .array(z.string(), { error: 'expected a list of strings' })
      .superRefine((args, ctx) => {
        for (const problem of validateMatchArgs(args)) ctx.addIssue({ code: 'custom', message: problem });
      })
      .optional(),
    /** Default both. */
    families: listOf(oneOf(['ipv4', 'ipv6'])).optional(),
  },
  { error: (iss) => `expected { chains, match?, families? }, got ${JSON.stringify(iss.input)}` },
);
/** Rules nfqueue() installs to send traffic to its queue (parsed). */
export type NfqueueRules = z.output<typeof NfqueueRulesOptions>;

export const NfqueueOptions = z.strictObject({
  /** The queue number the rules send packets to (one reader per queue and namespace). */
  queue: int(0, 65535),
  /** Bytes of each packet copied to us (0xffff = whole packets; 0 = metadata only, no headers). */
  copyRange: int(0, 0xffff).default(0xffff),
  /** Packets the kernel holds for us at most; beyond that failOpen decides. */
  maxLen: int(1, 1 << 20).default(1024),
  /** Accept, rather than drop, what the queue cannot take (queue full, socket buffer full). */
  failOpen: bool().default(true),
  netns: netnsName().optional(),
  /** Install iptables rules queueing to `queue` while subscribed; without, your own rules must. */
  rules: NfqueueRulesOptions.optional(),
  /** A packet without a verdict after this long gets `defaultVerdict` (and a notice). */
  verdictTimeoutMs: int(1, 3_600_000).default(5000),
  /** For timed-out packets and those still pending at close. */
  defaultVerdict: oneOf(['accept', 'drop']).default('accept'),
  /** Receive buffer; default sized to hold maxLen packets of copyRange bytes. */
  recvBufferBytes: int(4096, 1 << 30).optional(),
  /** Look up interface names for indev/outdev (one `ip link` per unknown ifindex, at most every 2 s). */
  interfaceNames: bool().default(true),
  /**
   * Read the queue's socket on a worker thread in batches (src/netlink/batched.ts); its close releases the
   * queue before it returns. False: the `netlink` package's main-thread reader.
   */
  batchedReceive: bool().default(true),
});

export type NfqueueConfig = z.output<typeof NfqueueOptions>;

/** Options of nfqueue(): queue number, copy range, fail-open, rules, namespace; plus notices and a transport (tests). */
export type NfqueueOptionsInput = z.input<typeof NfqueueOptions> & {
  notices?: NoticeObserver;
  /** The kernel seam; tests pass the fake from `flowgrab/testing`. */
  transport?: TransportFactory;
  /** Told on subscribe what resolves once the subscription captures (see ReadyObserver). */
  ready?: ReadyObserver;
};

/** Validates options (every issue at once, a missing queue included) and fills in the defaults. */
export function parseNfqueueOptions(options: NfqueueOptionsInput): NfqueueConfig {
  return parseOptions('nfqueue', NfqueueOptions, options);
}

/** Receive buffer that holds a full queue: maxLen × (copy + per-message overhead), 1–256 MiB. */
export function defaultRecvBuffer(c: NfqueueConfig): number {
  const per = Math.min(c.copyRange || 0, 0xffff) + 512;
  return Math.min(256 << 20, Math.max(1 << 20, c.maxLen * per));
}
