/**
 * A process that races others for something (a lock, a table): it loads
 * (`prelude`, ES module code), prints "ready", waits for a line on stdin,
 * then runs `act` (the body of an async function returning what to print,
 * e.g. 'ok'), printing "busy <message>" for an FG_ERR_BUSY it throws and
 * "error <message>" for anything else; then it stays, holding what it won,
 * until its stdin ends. Told to go at once, several race for real.
 */
import { spawn } from 'node:child_process';

export interface Racer {
  pid: number;
  ready(): boolean;
  go(): void;
  /** What it printed after going ('' until then). */
  said(): string;
  kill(): Promise<void>;
  end(): Promise<void>;
}

export function racer(prelude: string, act: string): Racer {
  const src = `${prelude}
    process.stdout.write('ready\\n');
    await new Promise((go) => process.stdin.once('data', go));
    let said;
    try {
      said = await (async () => { ${act} })();
    } catch (err) {
      said = (err.code === 'FG_ERR_BUSY' ? 'busy ' : 'error ') + err.message;
    }
    process.stdout.write(said + '\\n');
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', src], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    pid: child.pid ?? 0,
    ready: () => out.startsWith('ready\n'),
    go: () => child.stdin.write('go\n'),
    said: () => out.replace(/^ready\n/, '').trim(),
    kill: () => {
      child.kill('SIGKILL');
      return exited;
    },
    end: () => {
      child.stdin.end();
      return exited;
    },
  };
}
