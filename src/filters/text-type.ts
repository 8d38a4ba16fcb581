/**
 * The record type of a graph given as text, worked out by the type checker
 * when the text is a literal: `populate('conntrack() -> match(proto == tcp)')`
 * gives `ConntrackRecord`, `populate('(conntrack() | dns()) -> merge()')`
 * gives `ConntrackRecord | DnsRecord`.
 *
 * It is conservative: the union of the sources' records is claimed only when
 * every node in the text is a built-in source with a typed record (conntrack,
 * dns, arp, nfqueue) or a filter that keeps its input's shape (match, dedupe,
 * sample, ratelimit, merge, scope; enrich adds its optional `names`). Any other node (project, count,
 * redact, anonymize, replay, nats, a registered one), text the analysis
 * cannot read, or a text that is not a literal gives `Record<string, unknown>`
 * (or the type stated with `populate<R>(text)` / `create<R>()`).
 */
import type { NeighRecord } from '../sources/arp/record.js';
import type { ConntrackRecord } from '../sources/conntrack/record.js';
import type { DnsRecord } from '../sources/dns/record.js';
import type { PacketRecord } from '../sources/nfqueue/record.js';
import type { Rec } from './registry.js';

/** Sources whose records have one known type. */
interface TypedSources {
  conntrack: ConntrackRecord;
  dns: DnsRecord;
  arp: NeighRecord;
  nfqueue: PacketRecord;
}

/** Filters whose output records are input records (some dropped, or fields added). */
type ShapeKeeping = 'match' | 'dedupe' | 'sample' | 'ratelimit' | 'merge' | 'scope' | 'enrich';

type Space = ' ' | '\n' | '\t' | '\r' | '(';
type Digit = '0' | '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9' | '_';
/** A letter has two cases; digits and `_` are listed. */
type IsIdentChar<C extends string> = Lowercase<C> extends Uppercase<C> ? (C extends Digit ? true : false) : true;

type TrimStart<S extends string> = S extends `${Space}${infer T}` ? TrimStart<T> : S;
type Ident<S extends string, Acc extends string = ''> = S extends `${infer C}${infer T}`
  ? IsIdentChar<C> extends true
    ? Ident<T, `${Acc}${C}`>
    : Acc
  : Acc;

type TrimEnd<S extends string> = S extends `${infer T}${' ' | '\n' | '\t' | '\r'}` ? TrimEnd<T> : S;
/** A `(` after this text opens a group (a fork, or the FFPF tuple), not a node's arguments. */
type OpensGroup<Pre extends string> =
  TrimEnd<Pre> extends '' | `${string}->` | `${string}|` | `${string}(` ? true : false;
/**
 * The text with every node's arguments emptied (`match(qname ~ /(a|b)/)` → `match()`): a `|` or `->` or a
 * source's name inside them is no node. Steps from one parenthesis to the next (not character by character, so
 * a long text stays within the checker's recursion limit).
 */
type StripArgs<S extends string, Acc extends string = ''> = S extends `${infer Pre}(${infer Rest}`
  ? OpensGroup<Pre> extends true
    ? StripArgs<Rest, `${Acc}${Pre}(`>
    : SkipArgs<Rest, [0]> extends infer After extends string
      ? StripArgs<After, `${Acc}${Pre}()`>
      : never
  : `${Acc}${S}`;
/** The text after the `)` that closes `D.length` open parentheses. */
type SkipArgs<S extends string, D extends unknown[]> = D extends []
  ? S
  : S extends `${infer A})${infer B}`
    ? A extends `${string}(${infer Inner}`
      ? SkipArgs<`${Inner})${B}`, [...D, 0]>
      : D extends [unknown, ...infer Up]
        ? SkipArgs<B, Up>
        : S
    : '';
/** The text without `#` comments (to the end of their line). */
type StripComments<S extends string> = S extends `${infer A}#${infer B}`
  ? B extends `${string}\n${infer C}`
    ? `${A}\n${StripComments<C>}`
    : A
  : S;
/** The text the node analysis reads: comments and arguments gone. */
type Skeleton<S extends string> = StripComments<StripArgs<S>>;

/**
 * Steps the checks below take at most (a parenthesis, a quoted string, a comment each): past them the text is
 * called unreadable (typed Rec), not checked further. The checker's recursion is bounded, and a long literal
 * (1 200 quoted names in a match) failed to compile (TS2589).
 */
type Steps = 48;
/**
 * True when the parentheses of `T` pair up (as SkipArgs counts them: every one, escaped or not), stepping from
 * one parenthesis to the next; false too for a trailing backslash (it may hide the string's end).
 */
type Balanced<T extends string, D extends unknown[] = [], C extends unknown[] = []> = C['length'] extends Steps
  ? false
  : T extends `${infer A}(${infer R}`
    ? A extends `${string})${string}`
      ? CloseNext<T, D, C>
      : Balanced<R, [...D, 0], [...C, 0]>
    : T extends `${string})${string}`
      ? CloseNext<T, D, C>
      : T extends `${string}\\`
        ? false
        : D extends []
          ? true
          : false;
/** The first parenthesis of `T` is a `)`: it closes one opened before, or the text is unbalanced. */
type CloseNext<T extends string, D extends unknown[], C extends unknown[]> = T extends `${string})${infer R}`
  ? D extends [unknown, ...infer Up]
    ? Balanced<R, Up, [...C, 0]>
    : false
  : false;
/**
 * True when a quoted string (quote `Q`) holds parentheses that do not pair up (`match(qname == "(")`), or may
 * hide its end (an escaped quote), or there are too many strings to look at: SkipArgs, which counts every
 * parenthesis, would end the node's arguments in the wrong place and read nodes where there are none.
 */
type ParenInQuotes<S extends string, Q extends string, C extends unknown[] = []> = C['length'] extends Steps
  ? true
  : S extends `${string}${Q}${infer In}${Q}${infer Rest}`
    ? Balanced<In> extends false
      ? true
      : ParenInQuotes<Rest, Q, [...C, 0]>
    : false;
/** The same for a `~ /regex/` of a match expression. */
type ParenInRegex<S extends string, C extends unknown[] = []> = C['length'] extends Steps
  ? true
  : S extends `${string}~${infer R}`
    ? TrimStart<R> extends `/${infer In}/${infer Rest}`
      ? Balanced<In> extends false
        ? true
        : ParenInRegex<Rest, [...C, 0]>
      : ParenInRegex<R, [...C, 0]>
    : false;
/** The same for a `#` comment (StripArgs runs before comments are stripped). */
type ParenInComment<S extends string, C extends unknown[] = []> = C['length'] extends Steps
  ? true
  : S extends `${string}#${infer After}`
    ? After extends `${infer Line}\n${infer Rest}`
      ? Balanced<Line> extends false
        ? true
        : ParenInComment<Rest, [...C, 0]>
      : Balanced<After> extends false
        ? true
        : false
    : false;
/** Text whose parentheses the analysis cannot tell apart: typed `Rec`, never guessed. */
type Unreadable<S extends string> =
  ParenInQuotes<S, '"'> extends true
    ? true
    : ParenInQuotes<S, "'"> extends true
      ? true
      : ParenInRegex<S> extends true
        ? true
        : ParenInComment<S>;

/** The pieces between `->` and `|`: each real node starts one (after spaces and opening parentheses). */
type Pieces<S extends string, Acc extends string[] = []> = S extends `${infer A}->${infer B}`
  ? Pieces<B, [...Acc, ...Bars<A>]>
  : [...Acc, ...Bars<S>];
type Bars<S extends string, Acc extends string[] = []> = S extends `${infer A}|${infer B}`
  ? Bars<B, [...Acc, A]>
  : [...Acc, S];

/** The union of the pieces' source records, or `false` when a piece is not a known node. */
type Walk<P extends string[], Acc = never> = P extends [infer H extends string, ...infer T extends string[]]
  ? Ident<TrimStart<H>> extends infer N
    ? N extends keyof TypedSources
      ? Walk<T, Acc | TypedSources[N]>
      : N extends ShapeKeeping
        ? Walk<T, Acc>
        : false
    : false
  : Acc;

/** True when some piece is an `enrich` node. */
type HasEnrich<P extends string[]> = P extends [infer H extends string, ...infer T extends string[]]
  ? Ident<TrimStart<H>> extends 'enrich'
    ? true
    : HasEnrich<T>
  : false;

/** What enrich() adds: names of addresses by field (optional: a branch without enrich has none). */
export interface EnrichedNames {
  names?: Record<string, string[]>;
}

/** Records of a whole graph text `S` (see the file comment). */
export type GraphTextRecord<S extends string> = string extends S
  ? Rec
  : Unreadable<S> extends true
    ? Rec
    : Walk<Pieces<Skeleton<S>>> extends infer U
      ? [U] extends [never]
        ? Rec
        : [U] extends [false]
          ? Rec
          : false extends U
            ? Rec
            : HasEnrich<Pieces<Skeleton<S>>> extends true
              ? U & EnrichedNames
              : U
      : Rec;

/**
 * The record type after `populate(S)` on a handle of records `R`: text that
 * extends the graph (`-> …`) keeps `R` when its filters keep the shape; a
 * whole graph gives its own records unless `R` was stated (is narrower than
 * `Record<string, unknown>`), which is then kept. Text that is not a literal,
 * that the analysis cannot read, or that adds a branch (`| …`) gives
 * `Record<string, unknown>`: `populate<R>(text)` states the type.
 */
export type PopulatedRecord<R extends object, S extends string> = string extends S
  ? Rec
  : Unreadable<S> extends true
    ? Rec
    : PopulatedBy<R, S, TrimStart<StripComments<S>>>;
type PopulatedBy<R extends object, S extends string, T extends string> = T extends `|${string}`
  ? Rec
  : T extends `->${infer Rest}`
    ? Walk<Pieces<Skeleton<Rest>>> extends infer U
      ? [U] extends [never]
        ? HasEnrich<Pieces<Skeleton<Rest>>> extends true
          ? R & EnrichedNames
          : R
        : Rec
      : Rec
    : Rec extends R
      ? GraphTextRecord<S>
      : R;
