// The network-namespace lab, shipped as part of `flowgrab/testing`: a
// simulated home network (router, dnsmasq, conntrack, NAT, LAN clients, WAN
// servers) to test flowgrab against the real kernel. Needs root.
export { type DnsmasqConfig, type DnsZone, dnsmasqArgv, type Resolved, resolveInZone } from './dns.js';
export {
  DEFAULT_TIMEOUT_MS,
  LabCommandError,
  missingTools,
  type RunOptions,
  type RunResult,
  run,
  teardownError,
} from './exec.js';
export {
  attachHomeNetwork,
  createHomeNetwork,
  destroyHomeNetwork,
  HOME_TOOLS,
  type HomeNetwork,
  type HomeNetworkOptions,
  type LabClient,
} from './home.js';
export { Lab, type LabOptions, type LabSpawnOptions, type VethOptions } from './lab.js';
export {
  isAlive,
  killPid,
  Netns,
  type NetnsSpawnOptions,
  processStartTime,
  uniqueId,
  type WaitOptions,
  waitFor,
} from './netns.js';
export { HTTP_BODY, isListening } from './services.js';
export {
  type DestroyResult,
  destroyLab,
  LAB_STATE_ROOT,
  type LabOwner,
  type LabProcRecord,
  labDir,
  labNamespaces,
  liveProcs,
  readOwner,
  readProcs,
  type SweepOptions,
  sweepStaleLabs,
} from './state.js';
export {
  type DnsExchange,
  type Exchange,
  generateTraffic,
  type TrafficOptions,
  type TrafficSummary,
} from './traffic.js';
