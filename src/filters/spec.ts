/**
 * GraphSpec: what the parser and the builder produce, the daemon transfers
 * and authorize() checks. Plain JSON, validated by zod.
 */
import { z } from 'zod';
import { measureSpec } from './limits.js';

/** A parameter value in a graph: number, string, boolean or a list of them. */
export type Value = number | string | boolean | Value[];
/** Schema of a parameter value. */
export const Value: z.ZodType<Value> = z.lazy(() => z.union([z.number(), z.string(), z.boolean(), z.array(Value)]));

/** One source or filter of a graph, with its arguments. */
export interface NodeSpec {
  /** Discriminant. */
  type: 'node';
  /** The source or filter name, e.g. `conntrack`, `match`. */
  name: string;
  /** Positional arguments, e.g. project(orig.src, orig.dst) or match's expression text. */
  args: Value[];
  /** Named parameters, e.g. count(by=orig.src, every=10s). */
  params: Record<string, Value>;
}
export interface PipeSpec {
  type: 'pipe';
  steps: ExprSpec[];
}
export interface ForkSpec {
  type: 'fork';
  branches: ExprSpec[];
}
/** A graph expression: a node, a pipe (`A -> B`) or a fork (`A | B`). */
export type ExprSpec = NodeSpec | PipeSpec | ForkSpec;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Schema of a node (bounded names, arguments and parameters). */
export const NodeSpec: z.ZodType<NodeSpec> = z
  .object({
    type: z.literal('node'),
    name: z.string().regex(NAME, 'a filter or source name (letters, digits, _)'),
    args: z.array(Value),
    params: z.record(z.string().regex(NAME, 'a parameter name'), Value),
  })
  .strict();

/** Schema of a graph expression. */
export const ExprSpec: z.ZodType<ExprSpec> = z.lazy(() =>
  z.union([
    NodeSpec,
    z.object({ type: z.literal('pipe'), steps: z.array(ExprSpec).min(2) }).strict(),
    z.object({ type: z.literal('fork'), branches: z.array(ExprSpec).min(2) }).strict(),
  ]),
);

const GraphSpecShape = z.object({ version: z.literal(1), root: ExprSpec }).strict();

/** Size limits first (without recursion): a deeply nested spec must not reach zod's recursive check. */
export const GraphSpec = z.preprocess((v, ctx) => {
  const root = v && typeof v === 'object' ? (v as { root?: unknown }).root : undefined;
  const { issues } = measureSpec(root, () => false);
  for (const i of issues) ctx.addIssue({ code: 'custom', message: i.message, path: ['root'] });
  return issues.length ? z.NEVER : v;
}, GraphSpecShape);
export type GraphSpec = z.infer<typeof GraphSpecShape>;

export const node = (name: string, args: Value[] = [], params: Record<string, Value> = {}): NodeSpec => ({
  type: 'node',
  name,
  args,
  params,
});

/** A path into the graph for messages: "root.steps[1].branches[0]". */
export type SpecPath = (string | number)[];
