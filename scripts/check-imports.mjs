#!/usr/bin/env node
// Import rules of docs/architecture.md, checked without a dependency: no
// import cycles among the TypeScript files under src/ and examples/, no
// file under src/ importing from a layer above its own, and the SPIN
// example's domain/ kept pure (no io/, no I/O modules, no timers). Exits 1
// with the offending cycles and edges listed. Usage: node scripts/check-imports.mjs [root]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? join(dirname(new URL(import.meta.url).pathname), '..'));

/** Layers, lowest first; a file may import its own layer or lower ones. */
export const LAYERS = [
  ['errors.ts', 'version.ts', 'rx.ts', 'util'],
  ['netlink'],
  ['sources'],
  ['filters', 'export'],
  ['flow'],
  ['auth'],
  ['daemon'],
  ['testing'],
  ['cli', 'index.ts'],
];

function layerOf(file) {
  const rel = relative(join(root, 'src'), file);
  if (rel.startsWith('..')) return undefined;
  const top = rel.split('/')[0];
  const i = LAYERS.findIndex((names) => names.includes(top));
  return i < 0 ? undefined : { rank: i, name: top };
}

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s+(type\s+)?[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

export function importGraph(files) {
  const graph = new Map();
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    const edges = [];
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[2] ?? m[3];
      const target = resolve(dirname(f), spec.replace(/\.js$/, '.ts'));
      // Type-only imports vanish at run time but still tie the layers together.
      edges.push({ to: target, typeOnly: Boolean(m[1]) });
    }
    graph.set(f, edges);
  }
  return graph;
}

/** Strongly connected components with more than one file (Tarjan, iterative). */
export function cycles(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const out = [];
  for (const start of graph.keys()) {
    if (idx.has(start)) continue;
    const work = [[start, 0]];
    idx.set(start, index);
    low.set(start, index++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const frame = work[work.length - 1];
      const [v, i] = frame;
      const edges = (graph.get(v) ?? []).filter((e) => graph.has(e.to));
      if (i < edges.length) {
        frame[1]++;
        const w = edges[i].to;
        if (!idx.has(w)) {
          idx.set(w, index);
          low.set(w, index++);
          stack.push(w);
          onStack.add(w);
          work.push([w, 0]);
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
        continue;
      }
      work.pop();
      if (work.length) {
        const u = work[work.length - 1][0];
        low.set(u, Math.min(low.get(u), low.get(v)));
      }
      if (low.get(v) === idx.get(v)) {
        const comp = [];
        let w;
        do {
          w = stack.pop();
          onStack.delete(w);
          comp.push(w);
        } while (w !== v);
        if (comp.length > 1) out.push(comp);
      }
    }
  }
  return out;
}

/** The SPIN example's pure part: model, lists, blocks, traffic… (examples/spin/README.md#layout). */
const SPIN_DOMAIN = join('examples', 'spin', 'domain');

/**
 * What a domain/ file may import besides its own folder: these modules, and
 * of each only the named values listed (`*`: any); type-only imports of them
 * are free. Everything else (io/, the app, node:fs, node:http, sqlite, mqtt,
 * the kernel helpers of flowgrab) is I/O.
 */
export const DOMAIN_ALLOWED = {
  flowgrab: ['AgedMap', 'DNS_MAX_TTL_S', 'answerTrusted', 'canonicalIP', 'formatIP', 'parseIP'],
  'node:net': ['isIP', 'isIPv4', 'isIPv6'],
  rxjs: '*',
  zod: '*',
};

const ANY_IMPORT =
  /(?:^|\n)\s*(?:import|export)\s+(type\s+)?(?:([^'"]*?)\s*from\s*)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const TIMER = /\b(setTimeout|setInterval|setImmediate)\s*\(/;

/** Named values an import clause takes (`type X` entries left out); '*' for a default or namespace import. */
function importedValues(clause) {
  const names = [];
  const braces = /\{([^}]*)\}/.exec(clause);
  const outside = clause
    .replace(/\{[^}]*\}/, '')
    .replace(/,/g, ' ')
    .trim();
  if (outside) names.push('*');
  for (const part of braces ? braces[1].split(',') : []) {
    const p = part.trim();
    if (p && !p.startsWith('type ')) names.push(p.split(/\s+as\s+/)[0].trim());
  }
  return names;
}

/** Files under examples/spin/domain/ that import io/, the app or an I/O module, or start timers. */
export function domainViolations(files) {
  const bad = [];
  const domainDir = join(root, SPIN_DOMAIN);
  for (const f of files) {
    if (!f.startsWith(`${domainDir}/`)) continue;
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(ANY_IMPORT)) {
      const spec = m[3] ?? m[4];
      const typeOnly = Boolean(m[1]);
      if (spec.startsWith('.')) {
        const target = resolve(dirname(f), spec);
        if (!target.startsWith(`${domainDir}/`)) bad.push({ file: f, what: `imports ${spec} (outside domain/)` });
        continue;
      }
      if (typeOnly) continue;
      const allowed = DOMAIN_ALLOWED[spec];
      const values = m[4] !== undefined ? ['*'] : importedValues(m[2] ?? '');
      const extra = allowed === '*' ? [] : allowed === undefined ? ['*'] : values.filter((v) => !allowed.includes(v));
      if (extra.length && (values.length || allowed === undefined))
        bad.push({ file: f, what: `imports ${allowed === undefined ? '' : `${extra.join(', ')} from `}${spec} (I/O)` });
    }
    const timer = TIMER.exec(text);
    if (timer) bad.push({ file: f, what: `starts a timer (${timer[1]})` });
  }
  return bad;
}

export function upwardImports(graph) {
  const bad = [];
  for (const [from, edges] of graph) {
    const a = layerOf(from);
    if (!a) continue;
    for (const e of edges) {
      const b = layerOf(e.to);
      if (b && b.rank > a.rank) bad.push({ from, to: e.to, fromLayer: a.name, toLayer: b.name });
    }
  }
  return bad;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  const files = [...walk(join(root, 'src'), []), ...walk(join(root, 'examples'), [])];
  const graph = importGraph(files);
  const rel = (p) => relative(root, p);
  const cyc = cycles(graph);
  const up = upwardImports(graph);
  const impure = domainViolations(files);
  for (const c of cyc) console.error(`cycle: ${c.map(rel).sort().join(' ↔ ')}`);
  for (const u of up) console.error(`upward import: ${rel(u.from)} (${u.fromLayer}) → ${rel(u.to)} (${u.toLayer})`);
  for (const d of impure) console.error(`SPIN domain/ not pure: ${rel(d.file)} ${d.what}`);
  if (cyc.length || up.length || impure.length) process.exit(1);
  console.log(`imports: ${files.length} files, no cycles, no upward imports, SPIN domain/ pure`);
}
