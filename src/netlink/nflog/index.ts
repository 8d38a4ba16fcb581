export * from './config.js';
export * as nflogEnums from './enums.js';
export { decodeNflogPacket, encodeNflogPacket, type NflogPacket } from './packet.js';
