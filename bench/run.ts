/** `npm run bench`: every benchmark, each printing ratios against a baseline measured in the same run. */
import { benchConntrack } from './conntrack.js';

if (process.getuid?.() !== 0) {
  console.error('bench: needs root (network namespaces, conntrack)');
  process.exit(1);
}
await benchConntrack();
