export * as sockDiagEnums from './enums.js';
export * from './lookup.js';
export * from './unix.js';
