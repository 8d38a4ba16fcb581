/**
 * The nft table that logs DNS to the source's NFLOG group: port 53 over UDP
 * and TCP, both directions, in the chosen hooks, with queue-threshold 1
 * (the default batching delays delivery by up to a second). A packet from
 * port 53 to port 53 is logged once.
 */
import { NftTable } from '../firewall/nft.js';
import type { DnsConfig } from './options.js';

export function dnsRuleBody(c: DnsConfig): string {
  const log = `log prefix "flowgrab-dns" group ${c.group} queue-threshold 1`;
  // Before filtering (priority -150), so packets a later rule drops are still seen.
  return c.hooks
    .map((hook) =>
      [
        `  chain ${hook} {`,
        `    type filter hook ${hook} priority -150; policy accept;`,
        `    meta l4proto { tcp, udp } th dport 53 ${log}`,
        `    meta l4proto { tcp, udp } th sport 53 th dport != 53 ${log}`,
        '  }',
      ].join('\n'),
    )
    .join('\n');
}

/** The nft table (family inet) the dns source installs for NFLOG group `group`. */
export const dnsTableName = (group: number) => `flowgrab_dns_g${group}`;

export function installDnsRules(c: DnsConfig): Promise<NftTable> {
  return NftTable.install({ family: 'inet', name: dnsTableName(c.group), body: dnsRuleBody(c), netns: c.netns });
}
