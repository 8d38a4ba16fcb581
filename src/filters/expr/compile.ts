/**
 * Match expressions compiled once into plain JS predicates (new Function):
 * no syntax tree is walked per record. `interpretMatch` is the slow, obvious
 * reference the compiled code is tested against.
 */

import { prefixMatcher } from '../../netlink/prefix.js';
import { type FieldCatalog, fieldValues, lookupField } from '../fields.js';
import type { Literal, MatchExpr } from './ast.js';
import { compileRegex } from './regex.js';

export type Predicate = (r: unknown) => boolean;

const valuePredicate = (e: Exclude<MatchExpr, { op: 'and' | 'or' | 'not' }>): ((v: unknown) => boolean) => {
  switch (e.op) {
    case 'cmp': {
      const L = e.value;
      switch (e.cmp) {
        case '==':
          return (v) => v === L;
        case '!=':
          return (v) => v === L; // negated over all values by the caller
        case '<':
          return (v) => v !== undefined && (v as Literal) < L;
        case '<=':
          return (v) => v !== undefined && (v as Literal) <= L;
        case '>':
          return (v) => v !== undefined && (v as Literal) > L;
        case '>=':
          return (v) => v !== undefined && (v as Literal) >= L;
      }
      break;
    }
    case 'in': {
      const set = new Set<unknown>(e.values);
      return (v) => set.has(v);
    }
    case 'cidr':
      return prefixMatcher(e.cidr);
    case 'regex': {
      const test = compileRegex(e.source, e.flags); // linear time: see regex.ts
      return (v) => typeof v === 'string' && test(v);
    }
    case 'truthy':
      return (v) => Boolean(v);
  }
  return () => false;
};

/** The reference: walks the tree for every record. */
export function interpretMatch(e: MatchExpr, r: unknown): boolean {
  switch (e.op) {
    case 'and':
      return interpretMatch(e.left, r) && interpretMatch(e.right, r);
    case 'or':
      return interpretMatch(e.left, r) || interpretMatch(e.right, r);
    case 'not':
      return !interpretMatch(e.arg, r);
    default: {
      const values = fieldValues(r, e.field.split('.'));
      const p = valuePredicate(e);
      // `!=` means "no value equals"; every other test means "some value passes".
      return e.op === 'cmp' && e.cmp === '!=' ? !values.some(p) : values.some(p);
    }
  }
}

/** Compiles `e` into a predicate. Paths through arrays (per the catalog, or when there is none) test every value. */
export function compileMatch(e: MatchExpr, catalog?: FieldCatalog): Predicate {
  const env: unknown[] = [];
  const bind = (x: unknown) => {
    env.push(x);
    return `E[${env.length - 1}]`;
  };
  const gen = (x: MatchExpr): string => {
    switch (x.op) {
      case 'and':
        return `(${gen(x.left)} && ${gen(x.right)})`;
      case 'or':
        return `(${gen(x.left)} || ${gen(x.right)})`;
      case 'not':
        return `!${gen(x.arg)}`;
      default: {
        const many =
          !catalog || (lookupField(catalog, x.field)?.many ?? true) || lookupField(catalog, x.field)?.kind === 'any';
        const neg = x.op === 'cmp' && x.cmp === '!=';
        if (many) {
          const path = bind(x.field.split('.'));
          const p = bind(valuePredicate(x));
          return `${neg ? '!' : ''}F(r, ${path}).some(${p})`;
        }
        const v = `r.${x.field.split('.').join('?.')}`;
        switch (x.op) {
          case 'cmp':
            if (x.cmp === '==' || x.cmp === '!=') return `(${v} ${neg ? '!==' : '==='} ${JSON.stringify(x.value)})`;
            return `(${v} !== undefined && ${v} ${x.cmp} ${JSON.stringify(x.value)})`;
          case 'in':
            return x.values.length <= 4
              ? `(${x.values.map((l) => `${v} === ${JSON.stringify(l)}`).join(' || ') || 'false'})`
              : `${bind(new Set<unknown>(x.values))}.has(${v})`;
          default:
            return `${bind(valuePredicate(x))}(${v})`;
        }
      }
    }
  };
  const body = gen(e);
  return new Function('E', 'F', `"use strict"; return (r) => ${body};`)(env, fieldValues) as Predicate;
}
