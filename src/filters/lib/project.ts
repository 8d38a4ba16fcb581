/** project(fields…): keeps the named paths in their nesting, plus type and ts: project(orig.dst) → {type, ts, orig: {dst}}. */
import { z } from 'zod';
import type { FieldCatalog } from '../fields.js';
import { checkFields, FieldPath, pathGetter } from '../params.js';
import { defineFilter, type Rec } from '../registry.js';

const ALWAYS = ['type', 'ts'];

/** Builds a projection once; the returned function copies the paths of one record. */
export function projector(paths: string[][]): (r: Rec) => Rec {
  const gets = paths.map((p) => pathGetter(p));
  return (r) => {
    const out: Rec = {};
    for (let i = 0; i < paths.length; i++) {
      const v = gets[i](r);
      if (v === undefined) continue;
      const path = paths[i];
      let o = out;
      for (let j = 0; j < path.length - 1; j++) o = (o[path[j]] ??= {}) as Rec;
      o[path[path.length - 1]] = v;
    }
    return out;
  };
}

export function projectRecord(r: Rec, paths: string[][]): Rec {
  const out: Rec = {};
  for (const path of paths) {
    const v = pathGetter(path)(r);
    if (v === undefined) continue;
    let o = out;
    for (let i = 0; i < path.length - 1; i++) o = (o[path[i]] ??= {}) as Rec;
    o[path[path.length - 1]] = v;
  }
  return out;
}

export const projectFilter = defineFilter({
  name: 'project',
  description: 'keep only the named fields (and type, ts): project(orig.src, orig.dst)',
  params: z.object({ fields: z.array(FieldPath).min(1) }).strict(),
  positional: (args) => ({ fields: args }),
  check: (p, ctx) => checkFields(p.fields, ctx.input, ctx.path, 'project'),
  output: (input, p) => {
    const keep = [...ALWAYS, ...p.fields];
    const out: FieldCatalog = new Map();
    for (const [k, v] of input) {
      if (keep.some((f) => k === f || k.startsWith(`${f}.`) || f.startsWith(`${k}.`))) out.set(k, v);
    }
    return out;
  },
  step: (p) => {
    const paths = [...ALWAYS, ...p.fields.filter((f) => !ALWAYS.includes(f))].map((f) => f.split('.'));
    const project = projector(paths);
    return (r, emit) => emit(project(r));
  },
});
