export * from './entry.js';
export * as ctEnums from './enums.js';
export * from './messages.js';
export * from './tuple.js';
