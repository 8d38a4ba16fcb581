/**
 * `npm run bench`: every benchmark, each printing ratios against a baseline measured in the same run
 * (process CPU from /proc for both sides where a figure is about CPU), medians of `--runs N` runs.
 */
import { benchConntrack } from './conntrack.js';
import { benchDaemon } from './daemon.js';
import { benchDecodeWorst } from './decode-worst.js';
import { benchDns } from './dns.js';
import { benchExport } from './export.js';
import { benchGraph } from './graph.js';
import { benchIdle } from './idle.js';
import { machineCheckApart } from './lib.js';
import { benchNats } from './nats.js';
import { benchNfqueue } from './nfqueue.js';
import { benchSpin } from './spin.js';
import { benchSpinMqtt } from './spin-mqtt.js';

if (process.getuid?.() !== 0) {
  console.error('bench: needs root (network namespaces, conntrack)');
  process.exit(1);
}
// `npm run bench -- [NAME] [--runs N]`: one bench by name (all without), each figure the median of N runs (lib.ts).
const args = process.argv.slice(2);
// Figures from different hours compare only with the machine's speed beside them (see machineCheck).
console.log(`before: ${machineCheckApart()}`);
const only = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--runs');
if (!only || only === 'conntrack') await benchConntrack();
if (!only || only === 'dns') await benchDns();
if (!only || only === 'nfqueue') await benchNfqueue();
if (!only || only === 'graph') await benchGraph();
if (!only || only === 'export') await benchExport();
if (!only || only === 'daemon') await benchDaemon();
if (!only || only === 'nats') await benchNats();
if (!only || only === 'spin-mqtt') await benchSpinMqtt();
if (!only || only === 'spin') await benchSpin();
if (!only || only === 'decode-worst') await benchDecodeWorst();
if (!only || only === 'idle') await benchIdle();
console.log(`after: ${machineCheckApart()}`);
