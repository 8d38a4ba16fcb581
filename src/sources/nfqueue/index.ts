export { packetToJson } from './json.js';
export {
  type NfqueueConfig,
  type NfqueueOptionsInput,
  type NfqueueRules,
  parseNfqueueOptions,
  type QueueChain,
  type VerdictName,
} from './options.js';
export type { QueuedPacket, VerdictOptions } from './queued.js';
export { PacketRecord } from './record.js';
export { NfqueueSource, nfqueue, nfqueueFeedRefs } from './source.js';
