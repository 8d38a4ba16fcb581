// Flow export: IPFIX, NetFlow v9, NDJSON and MQTT sinks, and the conntrack flow tracker.
export { type HostPort, parseHostPort } from './address.js';
export {
  type CollectorOptions,
  type IpfixSinkOptions,
  ipfixSink,
  type Netflow9SinkOptions,
  netflow9Sink,
  systemBootMs,
} from './collector.js';
export type { EncoderOptions, EncoderStats, MessageHandler } from './encoder.js';
export {
  type ConntrackExportOptions,
  type ExporterStats,
  type ExportOptions,
  exportConntrack,
  exportRecords,
  type FlowExporter,
} from './exporter.js';
export {
  asExportFlow,
  conntrackToFlow,
  ExportFlow,
  FlowEndReason,
  flowFromConntrack,
  isExportFlow,
  tcpFlagsOfState,
} from './flow.js';
export { IpfixEncoder, type IpfixOptions } from './ipfix.js';
export { type MqttSinkOptions, mqttSink, topicFor } from './mqtt.js';
export {
  compileSubject,
  msgId,
  type NatsFlowSink,
  type NatsSinkOptions,
  type NatsSinkStats,
  natsSink,
  recordSource,
} from './nats/index.js';
export { type NdjsonSinkOptions, ndjsonSink } from './ndjson.js';
export { Netflow9Encoder, type Netflow9Options } from './netflow9.js';
export { emptyStats, type FlowSink, type SinkStats } from './sink.js';
export {
  type PumpOptions,
  Spool,
  type SpoolEntry,
  type SpoolOptions,
  SpoolPump,
  type SpoolStats,
} from './spool/index.js';
export { FlowTracker, isConntrackRecord, type TrackerOptions } from './tracker.js';
