export * as rtnlEnums from './enums.js';
export * from './link.js';
export * from './mac.js';
export * from './neigh.js';
