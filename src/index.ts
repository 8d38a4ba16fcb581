/**
 * flowgrab: the kernel's view of network traffic as typed RxJS streams.
 *
 * Every public name is listed here on purpose (as undici does): the surface
 * changes only when this file does, and `etc/flowgrab.api.md` (checked by
 * `npm run lint:api`) shows the change. Plumbing (firewall tools, owner
 * tags, feed reference counts, the daemon server) stays in its modules.
 *
 * @packageDocumentation
 */

// Policy (as flowgrabd applies it; `flowgrab policy check` explains it)
export { type AuthContext, type AuthResult, authorize } from './auth/authorize.js';
export { policyAuthorizer } from './auth/flowgrab.js';
export { loadPolicy, PolicyError, parsePolicy } from './auth/load.js';
export { type Identity, Policy, type PolicyInput, Principal, principalFor, Who } from './auth/policy.js';
// Flows: create → populate → instantiate → activate ⇄ pause → close
export { connect } from './connect.js';
export type { QueueNotice, QueueRegistration, RemotePacket, RemoteVerdict } from './daemon/client.js';
export { RemoteFlowgrab, RemoteFlowHandle, RemoteQueue } from './daemon/client.js';
export type { DaemonStats, DaemonStatus, StatusClient, StatusFlow } from './daemon/host.js';
export type { RemoteStats } from './daemon/protocol.js';
// Errors
export { DecodeError, type ErrorCode, FlowgrabError, type FlowgrabErrorOptions } from './errors.js';
// Export to collectors, files and brokers
export type { HostPort } from './export/address.js';
export {
  type CollectorOptions,
  type IpfixSinkOptions,
  ipfixSink,
  type Netflow9SinkOptions,
  netflow9Sink,
} from './export/collector.js';
export type { EncoderOptions } from './export/encoder.js';
export {
  type ConntrackExportOptions,
  type ExporterStats,
  type ExportOptions,
  exportConntrack,
  exportRecords,
  type FlowExporter,
} from './export/exporter.js';
export { ExportFlow, FlowEndReason } from './export/flow.js';
export { type MqttSinkOptions, mqttSink } from './export/mqtt.js';
export { type NatsFlowSink, type NatsSinkOptions, type NatsSinkStats, natsSink } from './export/nats/sink.js';
export type { StreamOptions } from './export/nats/stream-options.js';
export { type NdjsonSinkOptions, ndjsonSink } from './export/ndjson.js';
export type { FlowSink, SinkStats } from './export/sink.js';
export type { SpoolOptions } from './export/spool/types.js';
// Graphs: text, specs and the typed builder
export {
  type AnySourceRecord,
  type CountRecord,
  type FieldPaths,
  GraphBuilder,
  graph,
  type PathValue,
  type PickPath,
  type PickPaths,
  type Projected,
  type RecordOf,
  type SourceRecords,
  type SumRecord,
  type TopRecord,
} from './filters/builder.js';
export { GraphError, type GraphIssue, type GraphIssueCode, GraphSyntaxError } from './filters/errors.js';
export { ExprSyntaxError } from './filters/expr/parse.js';
export type { FieldCatalog, FieldInfo, FieldKind } from './filters/fields.js';
export { GRAPH_LIMITS, GraphLimitError, type GraphLimitName } from './filters/limits.js';
export { Duration, FieldPath, getPath } from './filters/params.js';
export { parseGraph } from './filters/parser.js';
export { printGraph } from './filters/print.js';
export {
  type BuildContext,
  type DnsCacheLease,
  type FilterDef,
  type Rec,
  registeredNames,
  registerFilter,
  registerSource,
  type SourceDef,
  type StepFn,
  type Stepper,
} from './filters/registry.js';
export type { RecordingHeader } from './filters/replay.js';
export {
  ExprSpec,
  type ForkSpec,
  GraphSpec,
  NodeSpec,
  type PipeSpec,
  type SpecPath,
  type Value,
} from './filters/spec.js';
export type { EnrichedNames, GraphTextRecord, PopulatedRecord } from './filters/text-type.js';
export type { OverflowPolicy } from './flow/buffer.js';
export type { NodeStats } from './flow/compile.js';
export { Flowgrab, type FlowgrabOptions } from './flow/flowgrab.js';
export {
  type AuthorizeInput,
  type Authorizer,
  FlowHandle,
  type FlowOptions,
  type FlowStats,
  type LossNotice,
  READY_TIMEOUT_MS,
} from './flow/handle.js';
export type { FlowgrabLike, FlowHandleLike } from './flow/like.js';
export { type FlowOp, type FlowState, InvalidStateError } from './flow/states.js';
/** Address bytes ⇄ text as flowgrab's records print them (IPv6 per RFC 5952). */
export type { CtIcmp, CtTuple } from './netlink/conntrack/tuple.js';
export { canonicalIP, formatIP, parseIP } from './netlink/ip.js';
export { formatPrefix, isPrefix, type Prefix, parsePrefix, prefixContains, prefixMatcher } from './netlink/prefix.js';
export { NetlinkOpError } from './netlink/socket.js';
export { withNetns } from './netlink/syscall.js';
export type { RawTransport, TransportFactory, TransportHandlers, TransportOptions } from './netlink/transport.js';
export type { ArpOptions, ArpOptionsInput } from './sources/arp/options.js';
export { NeighRecord, type NeighRecordType, NeighState, type NeighStateName } from './sources/arp/record.js';
// Sources
export { arp } from './sources/arp/source.js';
export { type DeleteOptions, deleteConntrack, deleteConntrackTuple } from './sources/conntrack/delete.js';
export { conntrackToJson } from './sources/conntrack/json.js';
export type { ConntrackOptions, ConntrackOptionsInput, CtEventName } from './sources/conntrack/options.js';
export { ConntrackEnd, ConntrackRecord, type ConntrackRecordType, Counters } from './sources/conntrack/record.js';
export { conntrack } from './sources/conntrack/source.js';
export { answerTrusted, DNS_MAX_TTL_S, DnsCache, type DnsCacheOptions } from './sources/dns/cache.js';
export type { DnsHook, DnsOptions, DnsOptionsInput } from './sources/dns/options.js';
export { DnsAnswer, DnsRecord, DnsResolved } from './sources/dns/record.js';
export { dnsTableName } from './sources/dns/rules.js';
export { dns } from './sources/dns/source.js';
// Kept public only until examples/spin imports them from their modules (they are plumbing).
export { runTool, type ToolResult } from './sources/firewall/exec.js';
export type { QueueBuiltinChain, QueueFamily, QueueRulesSpec } from './sources/firewall/iptables.js';
export { NftTable, type NftTableSpec, sweepStaleTables } from './sources/firewall/nft.js';
export { type LoggedPacket, NflogReader, type NflogReaderOptions } from './sources/nflog/reader.js';
export { packetToJson } from './sources/nfqueue/json.js';
export type {
  NfqueueOptions,
  NfqueueOptionsInput,
  NfqueueRules,
  NfqueueRulesOptions,
  QueueChain,
  VerdictName,
} from './sources/nfqueue/options.js';
export type { QueuedPacket, VerdictOptions } from './sources/nfqueue/queued.js';
export { PacketRecord } from './sources/nfqueue/record.js';
export { type NfqueueSource, nfqueue } from './sources/nfqueue/source.js';
export type { NoticeObserver, SourceNotice } from './sources/notice.js';
export type { ReadyObserver } from './sources/ready.js';
export { AgedMap } from './util/aged-map.js';
export { type OpenRegular, openRegular, readRegularFile } from './util/regular-file.js';
export { trustedDir } from './util/trusted-dir.js';
export { readTrustedFile } from './util/trusted-file.js';
export { VERSION } from './version.js';
