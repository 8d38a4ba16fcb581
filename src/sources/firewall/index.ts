export { runTool, type ToolResult } from './exec.js';
export {
  IptablesQueueRules,
  type QueueBuiltinChain,
  type QueueFamily,
  type QueueRulesSpec,
  queueChainName,
  sweepStaleQueueChains,
  validateMatchArgs,
} from './iptables.js';
export { NftTable, type NftTableSpec, sweepStaleTables, tableName } from './nft.js';
export { isSelf, type Owner, ownerAlive, ownerTag, parseOwnerTag, processStart, selfOwner } from './owner.js';
