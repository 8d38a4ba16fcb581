/** Match expressions: the syntax tree. */
export type Literal = string | number | boolean;
export type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

export type MatchExpr =
  | { op: 'and' | 'or'; left: MatchExpr; right: MatchExpr }
  | { op: 'not'; arg: MatchExpr }
  | { op: 'cmp'; cmp: CmpOp; field: string; value: Literal }
  | { op: 'in'; field: string; values: Literal[] }
  | { op: 'cidr'; field: string; cidr: string }
  | { op: 'regex'; field: string; source: string; flags: string }
  | { op: 'truthy'; field: string };

/** Every field path an expression reads. */
export function exprFields(e: MatchExpr): string[] {
  switch (e.op) {
    case 'and':
    case 'or':
      return [...exprFields(e.left), ...exprFields(e.right)];
    case 'not':
      return exprFields(e.arg);
    default:
      return [e.field];
  }
}
