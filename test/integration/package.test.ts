/**
 * The package as a new user gets it: `npm pack`, installed into a fresh
 * project (--prefer-offline: from the npm cache when it has the packages), and every ```ts block of the README
 * compiled unchanged with `tsc --strict` (NodeNext, no skipLibCheck), with the
 * repo's TypeScript 5.x and with TypeScript's current `latest` (7.x). The
 * blocks may not cast. Needs `npx tsc -p tsconfig.json` first (dist/ is packed).
 */
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../src/testing/lab/index.js';

const ROOT = join(import.meta.dirname, '../..');
/** TypeScript's `latest` when this test was written; installed offline from the npm cache. */
const TS_LATEST = '7.0.2';
let dir: string;
let tarball: string;
/** One project for both compilers: the repo's tsc needs nothing of its node_modules/typescript (TS_LATEST). */
let p: string;
const run = promisify(execFile);

/**
 * Runs npm and resolves with its stdout. Asynchronous, with a deadline after which npm is killed (SIGKILL): a
 * synchronous call blocked the test worker, so no vitest timeout could end it, and one npm install stalled on a
 * registry request for 15 minutes (npm waits 5 minutes per fetch, with retries, by default).
 */
async function npm(args: string[], cwd: string, timeoutMs = 240_000): Promise<string> {
  const argv = [...args, '--no-audit', '--no-fund', '--loglevel=error', '--fetch-timeout=60000', '--fetch-retries=1'];
  try {
    const { stdout } = await run('npm', argv, { cwd, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { killed?: boolean; code?: unknown; stderr?: string };
    throw new Error(
      `npm ${args.join(' ')} ${e.killed ? `killed after ${timeoutMs} ms` : `exited ${e.code}`}: ${e.stderr}`,
    );
  }
}

/** The README's ```ts blocks, in order. */
function readmeBlocks(text: string): string[] {
  return [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/** A fresh project with the tarball, the README blocks and TypeScript `tsVersionDep` installed. */
async function project(name: string, tsVersionDep?: string): Promise<string> {
  const p = join(dir, name);
  mkdirSync(join(p, 'src'), { recursive: true });
  // The repo's own @types/node, so the cache has it (and what it needs).
  const typesNode = JSON.parse(readFileSync(join(ROOT, 'node_modules/@types/node/package.json'), 'utf8')).version;
  const deps: Record<string, string> = { flowgrab: `file:${tarball}`, '@types/node': typesNode };
  if (tsVersionDep) deps.typescript = tsVersionDep;
  writeFileSync(join(p, 'package.json'), JSON.stringify({ name, private: true, type: 'module', dependencies: deps }));
  writeFileSync(
    join(p, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        types: ['node'],
      },
      include: ['src'],
    }),
  );
  const blocks = readmeBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
  for (const [i, b] of blocks.entries()) writeFileSync(join(p, 'src', `readme-${i + 1}.ts`), b);
  // Native addons are not built: only the types matter here.
  await npm(['install', '--prefer-offline', '--ignore-scripts'], p);
  return p;
}

function tsc(p: string, bin: string): { code: number; out: string } {
  try {
    return { code: 0, out: execFileSync(process.execPath, [bin, '-p', p], { encoding: 'utf8', timeout: 240_000 }) };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, out: `${err.stdout}${err.stderr}` };
  }
}

beforeAll(async () => {
  expect(existsSync(join(ROOT, 'dist/src/index.d.ts')), 'run npx tsc -p tsconfig.json').toBe(true);
  dir = mkdtempSync(join(tmpdir(), 'fg-pack-'));
  const name = (await npm(['pack', '--pack-destination', dir], ROOT)).trim().split('\n').pop()!;
  tarball = join(dir, name);
  p = await project('fg-readme', TS_LATEST);
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('has README blocks that import flowgrab and never cast', () => {
    const blocks = readmeBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    for (const b of blocks) {
      expect(b).toMatch(/from 'flowgrab'/);
      expect(b).not.toMatch(/\bas\s+(never|unknown|any|const|[A-Z{[])/);
    }
  });

  it('ships LICENSE, CHANGELOG, the .d.ts files, and nothing from test/', () => {
    const list = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    for (const f of ['package/LICENSE', 'package/CHANGELOG.md', 'package/dist/src/index.d.ts'])
      expect(list).toContain(f);
    expect(list.filter((f) => f.startsWith('package/dist/test/'))).toEqual([]);
  });

  it('installs `flowgrab` (through its bin link) as the bundled command, which checks a graph with the bundled language', () => {
    const bin = join(p, 'node_modules/.bin/flowgrab');
    expect(realpathSync(bin)).toBe(join(p, 'node_modules/flowgrab/dist/bin/flowgrab.js'));
    expect(execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim()).toBe(
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version,
    );
    const check = (graph: string) => spawnSync(bin, ['graph', 'check', graph], { encoding: 'utf8' });
    const good = check('conntrack(events=[new]) -> match(proto==tcp)');
    expect(good.status, good.stderr).toBe(0);
    expect(good.stdout.trim()).toBe('conntrack(events=[new]) -> match(proto==tcp)');
    const bad = check('conntrack() -> match(orig.nope == 1)');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/no record reaching it has a field "orig.nope"/);
    // rxjs, commander and zod are inside the bundle: no chunk imports or requires them from node_modules.
    const dir = join(p, 'node_modules/flowgrab/dist/bin');
    const chunks = readdirSync(dir).filter((f) => f.endsWith('.js'));
    expect(chunks.length).toBeGreaterThan(1);
    for (const f of chunks)
      expect(readFileSync(join(dir, f), 'utf8'), f).not.toMatch(
        /(from|import\(|require\()\s*["'](rxjs|commander|zod)["'/]/,
      );
  });

  it('installs `flowgrabd` (through its bin link), which starts node with the daemon GC flags and stops on SIGTERM', async () => {
    const bin = join(p, 'node_modules/.bin/flowgrabd');
    expect(execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim()).toBe(
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version,
    );
    const run = mkdtempSync(join(tmpdir(), 'fg-bin-'));
    const socket = join(run, 'd.sock');
    const policy = join(run, 'policy.json');
    writeFileSync(policy, JSON.stringify({ version: 1, principals: [] }));
    const d = spawn(bin, ['--socket', socket, '--policy', policy], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    d.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((r) => d.on('exit', (code) => r(code)));
    try {
      await waitFor(() => existsSync(socket) || d.exitCode !== null, { what: 'the socket', timeoutMs: 30_000 });
      expect(existsSync(socket), err).toBe(true);
      // The script execs node: the daemon's own pid, with the flags V8 takes only on the command line.
      const argv = readFileSync(`/proc/${d.pid}/cmdline`, 'utf8').split('\0');
      expect(argv).toEqual(expect.arrayContaining(['--max-semi-space-size=4', '--single-threaded-gc']));
      expect(argv.some((a) => a.endsWith('dist/src/cli/flowgrabd.js'))).toBe(true);
    } finally {
      d.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(existsSync(socket)).toBe(false);
    rmSync(run, { recursive: true, force: true });
  }, 60_000);

  it('every README ts block compiles with the TypeScript 5.x of the repo (strict, no skipLibCheck)', () => {
    expect(JSON.parse(readFileSync(join(ROOT, 'node_modules/typescript/package.json'), 'utf8')).version).toMatch(
      /^5\./,
    );
    const r = tsc(p, join(ROOT, 'node_modules/typescript/bin/tsc'));
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  }, 300_000);

  it(`every README ts block compiles with TypeScript ${TS_LATEST} (latest)`, () => {
    const pkg = JSON.parse(readFileSync(join(p, 'node_modules/typescript/package.json'), 'utf8')) as {
      version: string;
    };
    expect(pkg.version).toBe(TS_LATEST);
    const r = tsc(p, join(p, 'node_modules/typescript/bin/tsc'));
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  }, 300_000);
});
