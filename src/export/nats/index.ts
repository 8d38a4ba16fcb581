// NATS JetStream: the fleet sink (spooled, acknowledged, deduplicated) and the graph source.
export { type NatsFlowSink, type NatsSinkOptions, type NatsSinkStats, natsSink } from './sink.js';
export { checkNatsSourceOptions, type NatsSourceOptions, natsRecords } from './source.js';
export { compileSubject, msgId, recordSource } from './subject.js';
