/** DnsRecord (docs/architecture.md#records): the zod schema is the single source of the type. */
import { z } from 'zod';
import { DNS_ERROR_CODES } from './wire.js';

/**
 * One answer record of a DNS response: name, type (A, AAAA, CNAME …), TTL in seconds, data as text. Types
 * flowgrab does not read (DNSSEC's NSEC, NSEC3, RRSIG, DNSKEY, DS; RP, NAPTR, TLSA, SSHFP, NULL, and types
 * it does not know) carry their rdata in hex.
 */
export const DnsAnswer = z.object({ name: z.string(), type: z.string(), ttl: z.number().int(), data: z.string() });
/** One answer of a DNS response (see the `DnsAnswer` schema). */
export type DnsAnswer = z.infer<typeof DnsAnswer>;

/** An address a response resolves a name to, through its CNAME chain (`via`). */
export const DnsResolved = z.object({
  /** The name that was asked. (At most 256 addresses per response are listed; `answers` has them all.) */
  name: z.string(),
  /** One final address of it. */
  ip: z.string(),
  /** Seconds: the smallest TTL along the chain that led to the address. */
  ttl: z.number().int(),
  /** The CNAME targets followed from `name` to the address, in order (empty when none). */
  via: z.array(z.string()),
});
/** A name → address resolution (see the `DnsResolved` schema). */
export type DnsResolved = z.infer<typeof DnsResolved>;

/** A DNS query or response seen on the wire (NFLOG): endpoints, id, name, type, rcode, answers, resolutions, round-trip time (ms). */
export const DnsRecord = z.object({
  /** ms since the epoch: the kernel's timestamp when it gave one, else when flowgrab received the packet. */
  ts: z.number(),
  kind: z.enum(['query', 'response']),
  family: z.enum(['ipv4', 'ipv6']),
  transport: z.enum(['udp', 'tcp']),
  /** The asking side and the answering side, whichever direction this packet went. */
  client: z.string(),
  clientPort: z.number().int(),
  server: z.string(),
  serverPort: z.number().int(),
  /** Where the router saw it: its own resolver's traffic (input/output) or passing through (forward). */
  hook: z.enum(['prerouting', 'input', 'forward', 'output', 'postrouting', 'unknown']),
  id: z.number().int(),
  /** The asked name in presentation form: a '.' or '\\' inside a label escaped, other bytes outside '!'..'~' as \\DDD. */
  qname: z.string(),
  qtype: z.string(),
  /** Response code name (NOERROR, NXDOMAIN …); empty for queries. */
  rcode: z.string(),
  answers: z.array(DnsAnswer),
  resolved: z.array(DnsResolved),
  /** ms from the matching query to this response, when both were seen. */
  rtt: z.number().optional(),
  /**
   * Why the packet could not be parsed, as a stable code: truncated, bad-count,
   * bad-name, bad-rdata, overrun, not-dns, fragment (see DnsErrorCode in wire.ts).
   * The other fields then hold what could be read.
   */
  error: z.enum(DNS_ERROR_CODES).optional(),
  /** The decoder's explanation of `error`, for people (its wording may change). */
  errorMessage: z.string().optional(),
  netns: z.string().optional(),
});
/** A record of the dns source (see the `DnsRecord` schema). */
export type DnsRecord = z.infer<typeof DnsRecord>;
