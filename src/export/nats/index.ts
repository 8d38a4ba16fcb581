// NATS JetStream: the fleet sink (spooled, acknowledged, deduplicated) and the graph source.
export { type NatsFlowSink, type NatsSinkOptions, type NatsSinkStats, natsSink } from './sink.js';
export { compileSubject, msgId, recordSource } from './subject.js';
