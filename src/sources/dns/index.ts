export { DNS_MAX_TTL_S, DnsCache, type DnsCacheOptions } from './cache.js';
export { resolveChains } from './message.js';
export { type DnsConfig, type DnsHook, type DnsOptionsInput, parseDnsOptions } from './options.js';
export { DnsAnswer, DnsRecord, DnsResolved } from './record.js';
export { dnsRuleBody, dnsTableName } from './rules.js';
export { dns, dnsFeedRefs } from './source.js';
export { TcpReassembler } from './tcp.js';
export { DNS_ERROR_CODES, type DnsErrorCode } from './wire.js';
