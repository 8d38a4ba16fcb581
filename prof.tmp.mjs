import { BenchNetns, timeCommand, median } from './dist/bench/lib.js';
const ns = new BenchNetns();
try {
  await ns.generate(100000, 0, 1);
  const a = [], b = [];
  for (let i = 0; i < 5; i++) {
    a.push(timeCommand(['ip', 'netns', 'exec', ns.name, 'conntrack', '-L']).ms);
    b.push(timeCommand(['ip', 'netns', 'exec', ns.name, process.execPath, 'dist/src/cli/flowgrab.js', 'conntrack', '--dump', '--json']).ms);
  }
  console.log('conntrack -L', median(a).toFixed(0), 'cli', median(b).toFixed(0), (median(b)/median(a)).toFixed(2));
} finally { ns.close(); }
