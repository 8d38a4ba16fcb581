// Records stored in NATS JetStream by `flowgrab export --nats`, as a source.

export { natsSourceDef } from './graph.js';
export { checkNatsSourceOptions, type NatsSourceOptions, natsRecords } from './source.js';
