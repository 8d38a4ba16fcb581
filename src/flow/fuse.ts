/**
 * Fused stages: a run of consecutive plain steps (no timers, no final flush)
 * runs as one generated function instead of one network node per step.
 * Tests and maps (see filters/lib/pure.ts) are inlined as `if (!t(r)) return`
 * and `r = m(r)`; any other plain step is called with a continuation built
 * once with the function, so nothing is allocated per record. Each step keeps
 * its own NodeStats, counted inside the generated code, and its own children:
 * a flow that shares a prefix attaches at the step it shares (a tap), and the
 * function is regenerated whenever the steps or their children change.
 */

import type { PureStep } from '../filters/lib/pure.js';
import type { Rec, StepFn } from '../filters/registry.js';
import { INLINE_KIDS, type NodeStats, type Sink, StepNode } from './network.js';

/** Fusion on (the default) or off: off builds one node per step, for comparisons in tests and benchmarks. */
export const fusion = { enabled: true };

interface Part {
  stats: NodeStats;
  step: PureStep;
  kids: Sink[];
}

/** Where a child attaches: the output of one step of a fused node. */
export interface Attachable {
  attach(child: Sink): () => void;
}

export class FusedNode implements Sink {
  private parts: Part[] = [];
  /** The generated function each record runs (replaced as steps and children change). */
  run: (r: Rec) => void = () => {};
  /** Detaches this node from its upstream (set by whoever attached it). */
  detachUp?: () => void;

  get length(): number {
    return this.parts.length;
  }

  push(r: Rec): void {
    this.run(r);
  }

  /** Adds a step at the end; returns the attachment point of its output. */
  append(stats: NodeStats, step: StepFn): FusedPoint {
    this.parts = [...this.parts, { stats, step, kids: [] }];
    this.rebuild();
    return new FusedPoint(this, this.parts.length - 1);
  }

  /** Removes step `i` and every step after it (their flows are gone: they hold no references). */
  truncate(i: number): void {
    this.parts = this.parts.slice(0, i);
    this.rebuild();
    if (this.parts.length === 0) this.detachUp?.();
  }

  attachAt(i: number, child: Sink): () => void {
    const part = this.parts[i];
    part.kids = [...part.kids, child];
    this.rebuild();
    return () => {
      part.kids = part.kids.filter((k) => k !== child);
      this.rebuild();
    };
  }

  isLast(i: number): boolean {
    return i === this.parts.length - 1;
  }

  // Completion and errors go depth first, as through separate nodes: the rest of the chain, then each step's own children.
  complete(): void {
    for (let i = this.parts.length - 1; i >= 0; i--) for (const k of this.parts[i].kids) k.complete();
  }

  error(err: unknown): void {
    for (let i = this.parts.length - 1; i >= 0; i--) for (const k of this.parts[i].kids) k.error(err);
  }

  private rebuild(): void {
    this.run = generate(this.parts);
  }
}

export class FusedPoint implements Attachable {
  constructor(
    readonly node: FusedNode,
    readonly index: number,
  ) {}

  attach(child: Sink): () => void {
    return this.node.attachAt(this.index, child);
  }
}

/**
 * Part `i` may hand its input on as it came: it is last, a projection, and each of its children reads only
 * values the projection keeps, at the same paths, and keeps nothing of the record (a count after a project):
 * they would read the same values from the projected record.
 */
function passesOn(parts: Part[], i: number): boolean {
  const kept = parts[i].step.kept;
  const kids = parts[i].kids;
  return (
    kept !== undefined &&
    i === parts.length - 1 &&
    kids.length > 0 &&
    kids.every((k) => k instanceof StepNode && k.readsOnly(kept))
  );
}

/**
 * One function for the whole run. The entry and each continuation (after a
 * step that is neither a test nor a map) are straight-line code:
 *   s0.in++; if (!t0(r)) return; s0.out++; s1.in++; r = m1(r); s1.out++; c1_0.push(r); s2.in++; g2(r, k2);
 */
function generate(parts: Part[]): (r: Rec) => void {
  if (parts.length === 0) return () => {};
  const env: unknown[] = [];
  const names: string[] = [];
  const bind = (x: unknown, prefix: string) => {
    const name = `${prefix}${env.length}`;
    env.push(x);
    names.push(name);
    return name;
  };
  const stats = parts.map((p) => bind(p.stats, 's'));
  // A step node child is run here as its push() would (count its record in, call its step): the call site is
  // this function's own, so it sees one step and V8 can inline it, where StepNode.push, shared by every step
  // node of the process, calls whatever steps the process runs.
  const call = (k: Sink) =>
    k instanceof StepNode
      ? `${bind(k.stats, 'n')}.in++; ${bind(k.fn, 'f')}(r, ${bind(k.out, 'o')});`
      : `${bind(k, 'c')}.push(r);`;
  // A few children are called inline; many (one per flow sharing the step) through a loop, so the code stays small.
  const after = (i: number) => {
    const kids = parts[i].kids;
    if (kids.length > INLINE_KIDS) {
      const a = bind(kids, 'a');
      return `${stats[i]}.out++; for (let j = 0; j < ${a}.length; j++) ${a}[j].push(r);`;
    }
    return [`${stats[i]}.out++;`, ...kids.map(call)].join(' ');
  };
  // A record entering part `from`, up to the first step that is neither a test nor a map (or the end).
  const code = (from: number): { body: string; generic?: number } => {
    const out: string[] = [];
    for (let i = from; i < parts.length; i++) {
      const step = parts[i].step;
      out.push(`${stats[i]}.in++;`);
      if (step.test) out.push(`if (!${bind(step.test, 't')}(r)) return;`);
      else if (step.map && passesOn(parts, i)) {
        // Its children read what they would read of its output: it need not be made.
        out.push(after(i));
        return { body: out.join(' ') };
      } else if (step.map) out.push(`r = ${bind(step.map, 'm')}(r);`);
      else {
        out.push(`${bind(step, 'g')}(r, k${i});`);
        return { body: out.join(' '), generic: i };
      }
      out.push(after(i));
    }
    return { body: out.join(' ') };
  };
  const conts: string[] = [];
  let seg = code(0);
  const entry = seg.body;
  // Continuations: what runs on each record the generic step at `generic` emits.
  while (seg.generic !== undefined) {
    const g = seg.generic;
    const head = after(g);
    seg = code(g + 1);
    conts.push(`const k${g} = (r) => { ${head} ${seg.body} };`);
  }
  const src = `"use strict"; const [${names.join(', ')}] = E;\n${conts.join('\n')}\nreturn (r) => { ${entry} };`;
  return new Function('E', src)(env) as (r: Rec) => void;
}
