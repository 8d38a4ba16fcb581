// The durable on-disk spool shared by the network sinks (NATS, MQTT, IPFIX over TCP).
export { type PumpOptions, SpoolPump } from './pump.js';
export { Spool, type SpoolEntry, type SpoolOptions, type SpoolStats } from './spool.js';
