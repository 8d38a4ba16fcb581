import { BenchNetns } from './dist/bench/lib.js';
import { execFileSync } from 'node:child_process';
const ns = new BenchNetns();
try {
  await ns.generate(100000, 0, 1);
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    execFileSync('/usr/bin/time', ['-f', '%U user %S sys %M KB', 'ip', 'netns', 'exec', ns.name, process.execPath, '--import', 'data:text/javascript,process.on("exit",()=>process.stderr.write("exit at "+performance.now().toFixed(0)+"\\n"))', 'dist/src/cli/flowgrab.js', 'conntrack', '--dump', '--json'], { stdio: ['ignore', 'ignore', 'inherit'] });
    console.log('wall', (performance.now() - t0).toFixed(0));
  }
} finally { ns.close(); }
