/** match(expr): keeps the records the expression accepts; compiled once to a plain predicate. */
import { z } from 'zod';
import { exprFields } from '../expr/ast.js';
import { compileMatch } from '../expr/compile.js';
import { parseMatchExpr } from '../expr/parse.js';
import { checkFields } from '../params.js';
import { defineFilter } from '../registry.js';
import { testStep } from './pure.js';

export const matchFilter = defineFilter({
  name: 'match',
  description: 'keep records for which the expression holds: match(proto == tcp && orig.dport in [80,443])',
  params: z.object({ expr: z.string().min(1) }).strict(),
  positional: (args) => ({ expr: args[0] }),
  check: (p, ctx) => {
    try {
      return checkFields(exprFields(parseMatchExpr(p.expr)), ctx.input, ctx.path, 'match');
    } catch (err) {
      return [{ code: 'bad_expression', path: ctx.path, message: (err as Error).message }];
    }
  },
  step: (p, ctx) => {
    return testStep(compileMatch(parseMatchExpr(p.expr), ctx.input));
  },
});
