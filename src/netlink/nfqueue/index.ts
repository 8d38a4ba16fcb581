export * from './config.js';
export * as nfqEnums from './enums.js';
export { decodeNfqPacket, encodeNfqPacket, NFQUEUE_PACKET_TYPE, type NfqPacket, peekNfqPacketId } from './packet.js';
