export { runTool, type ToolResult } from './exec.js';
export { NftTable, type NftTableSpec, sweepStaleTables, tableName } from './nft.js';
export { isSelf, type Owner, ownerAlive, ownerTag, parseOwnerTag, processStart, selfOwner } from './owner.js';
