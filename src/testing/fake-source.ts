/**
 * A graph source fed by the test: `fake(feed=NAME, fields=conntrack)`. Records
 * pushed with `fakeFeed(NAME).next(r)` flow through graphs like kernel ones.
 */
import { Subject } from 'rxjs';
import { z } from 'zod';
import { ANY_FIELDS } from '../filters/fields.js';
import { type Rec, registerSource } from '../filters/registry.js';
import { RECORD_FIELDS } from '../filters/sources.js';

const feeds = new Map<string, Subject<Rec>>();
/** How many times a fake feed was subscribed (to check that shared prefixes subscribe once). */
export const fakeSubscriptions = new Map<string, number>();

/**
 * The feed named `name`: what a test pushes into it comes out of `fake(feed=name)` sources. No root needed.
 * `R` is the type of the records the test pushes (any object type, an interface too).
 */
export function fakeFeed<R extends object = Rec>(name: string): Subject<R> {
  let s = feeds.get(name);
  if (!s) {
    s = new Subject<Rec>();
    feeds.set(name, s);
  }
  return s as unknown as Subject<R>;
}

registerSource({
  name: 'fake',
  description: 'records pushed by a test: fake(feed=NAME, fields=conntrack|dns|any)',
  params: z.object({ feed: z.string(), fields: z.enum(['conntrack', 'dns', 'any']).default('conntrack') }).strict(),
  fields: (p) => (p.fields === 'any' ? ANY_FIELDS : RECORD_FIELDS[p.fields]),
  create: (p) => {
    fakeSubscriptions.set(p.feed, (fakeSubscriptions.get(p.feed) ?? 0) + 1);
    return fakeFeed(p.feed);
  },
});
