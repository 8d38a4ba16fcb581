/**
 * The README's source and filter tables and `flowgrab graph list`, both
 * rendered from the registry's built-in nodes (their descriptions,
 * parameters and capabilities), so neither can forget a node.
 * `npm run docs:tables` writes the tables into the README; a unit test
 * checks that they match.
 */
import { BUILTIN_NODES } from '../filters/builtin.js';
import {
  isBuiltinNode,
  lookupNode,
  nodeCapabilities,
  paramNames,
  type RegisteredNode,
  registeredNames,
} from '../filters/registry.js';

/** One built-in node as listed: name, description, parameter names, capabilities. */
export interface NodeInfo {
  name: string;
  kind: 'source' | 'filter';
  description: string;
  params: string[];
  /** What a policy must grant for it (`netns` only when given `netns=`). */
  capabilities: string[];
}

const NETNS_CAP = 'netns (with netns=)';

function info(def: RegisteredNode): NodeInfo {
  const params = paramNames(def.name) ?? [];
  const caps: string[] = nodeCapabilities(def.name, {});
  if (params.includes('netns')) caps.push(NETNS_CAP);
  return { name: def.name, kind: def.kind, description: def.description, params, capabilities: caps };
}

/** The built-in sources (by name) and filters (in the registry's order), or also registered ones with `all`. */
export function listNodes(all = false): { sources: NodeInfo[]; filters: NodeInfo[] } {
  const defs = [...BUILTIN_NODES];
  if (all) {
    // Nodes added with registerSource()/registerFilter() come after the built-ins.
    for (const d of registeredDefs()) if (!isBuiltinNode(d.name)) defs.push(d);
  }
  const nodes = defs.map(info);
  return {
    sources: nodes.filter((n) => n.kind === 'source').sort((a, b) => a.name.localeCompare(b.name)),
    filters: nodes.filter((n) => n.kind === 'filter'),
  };
}

function registeredDefs(): RegisteredNode[] {
  const { sources, filters } = registeredNames();
  return [...sources, ...filters].map((n) => lookupNode(n)).filter((d): d is RegisteredNode => d !== undefined);
}

const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ');

/** Puts `name(…)` examples of a description in code spans (outside existing ones). */
function codeExamples(name: string, text: string): string {
  const parts = text.split('`');
  const re = new RegExp(`\\b${name}\\([^)]*\\)`, 'g');
  return parts.map((p, i) => (i % 2 ? `\`${p}\`` : p.replace(re, (m) => `\`${m}\``))).join('');
}

function row(n: NodeInfo): string {
  const caps = n.capabilities.length
    ? n.capabilities.map((c) => (c === NETNS_CAP ? '`netns` (with `netns=`)' : `\`${c}\``)).join(', ')
    : '—';
  const params = n.params.length ? n.params.map((p) => `\`${p}\``).join(', ') : '—';
  return `| \`${n.name}\` | ${cell(codeExamples(n.name, n.description))} | ${cell(params)} | ${cell(caps)} |`;
}

export const TABLES_BEGIN = '<!-- node tables: generated from the registry by `npm run docs:tables`; do not edit -->';
export const TABLES_END = '<!-- end of node tables -->';

/** The two Markdown tables (sources, then filters), without the markers. */
export function renderNodeTables(): string {
  const { sources, filters } = listNodes();
  return [
    '| sources | what they read | parameters | capabilities a policy must grant |',
    '|---|---|---|---|',
    ...sources.map(row),
    '',
    '| filters | what they do | parameters | capabilities a policy must grant |',
    '|---|---|---|---|',
    ...filters.map(row),
  ].join('\n');
}

/** The README text with the generated block between the markers replaced by `tables`. */
export function replaceNodeTables(readme: string, tables = renderNodeTables()): string {
  const a = readme.indexOf(TABLES_BEGIN);
  const b = readme.indexOf(TABLES_END);
  if (a < 0 || b < a) throw new Error(`README: the markers ${TABLES_BEGIN} … ${TABLES_END} are missing`);
  return `${readme.slice(0, a + TABLES_BEGIN.length)}\n${tables}\n${readme.slice(b)}`;
}

/** The generated block as it is in the README now (between the markers), or undefined. */
export function currentNodeTables(readme: string): string | undefined {
  const a = readme.indexOf(TABLES_BEGIN);
  const b = readme.indexOf(TABLES_END);
  if (a < 0 || b < a) return undefined;
  return readme.slice(a + TABLES_BEGIN.length, b).trim();
}

/** `flowgrab graph list`: every source and filter with its description, parameters and capabilities. */
export function graphListText(all = true): string {
  const { sources, filters } = listNodes(all);
  const width = Math.max(...[...sources, ...filters].map((n) => n.name.length));
  const block = (title: string, nodes: NodeInfo[]) => [
    `${title}:`,
    ...nodes.flatMap((n) => [
      `  ${n.name.padEnd(width)}  ${n.description}`,
      ...(n.params.length ? [`  ${' '.repeat(width)}  parameters: ${n.params.join(', ')}`] : []),
      ...(n.capabilities.length ? [`  ${' '.repeat(width)}  capabilities: ${n.capabilities.join(', ')}`] : []),
    ]),
  ];
  return [...block('sources', sources), '', ...block('filters', filters)].join('\n');
}
