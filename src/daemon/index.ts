// The daemon's client side is public (connect() returns a RemoteFlowgrab); the server is for flowgrabd.
export type {
  QueueNotice,
  QueueRegistration,
  RemoteFlowgrab,
  RemoteFlowHandle,
  RemotePacket,
  RemoteQueue,
  RemoteVerdict,
} from './client.js';
export type { QueueConfig, QueueStats } from './queue.js';
export { Daemon, type DaemonOptions, type DaemonStats } from './server.js';
