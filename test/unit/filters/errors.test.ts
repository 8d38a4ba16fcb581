import { asyncScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import '../../../src/filters/builtin.js';
import { closestName, editDistance, GraphSyntaxError } from '../../../src/filters/errors.js';
import { parseGraph } from '../../../src/filters/parser.js';
import { suggestNode } from '../../../src/filters/registry.js';
import { Compiler } from '../../../src/flow/compile.js';

const compiler = new Compiler({
  scheduler: asyncScheduler,
  dnsCache: () => {
    throw new Error('no DNS cache in these tests');
  },
});
const messages = (text: string) => compiler.check(parseGraph(text)).issues.map((i) => i.message);

function syntaxError(text: string): GraphSyntaxError {
  try {
    parseGraph(text);
  } catch (e) {
    if (e instanceof GraphSyntaxError) return e;
    throw e;
  }
  throw new Error(`parsed: ${text}`);
}

describe('match() syntax errors point into the graph text', () => {
  it('gives the line and column of the graph, with the caret under that line', () => {
    const err = syntaxError('conntrack\n  -> match(proto == tcp && orig.src in 10.0.0.0)');
    expect([err.line, err.col]).toEqual([2, 40]);
    expect(err.message).toBe(
      'line 2, column 40: match(): expected [list] or an address prefix like 10.0.0.0/8\n' +
        '    -> match(proto == tcp && orig.src in 10.0.0.0)\n' +
        `  ${' '.repeat(39)}^`,
    );
  });

  it('counts the spaces before the expression and lines inside it', () => {
    expect([syntaxError('match(   == tcp)').line, syntaxError('match(   == tcp)').col]).toEqual([1, 10]);
    const err = syntaxError('conntrack -> match(proto == tcp &&\n    orig.dport ==)');
    expect([err.line, err.col]).toEqual([2, 18]);
    expect(err.reason).toBe('match(): expected a value, got the end');
  });

  it('still parses good expressions', () => {
    expect(() => parseGraph('conntrack -> match(proto == tcp && orig.dport in [80, 443])')).not.toThrow();
  });
});

describe('parameter errors say what is expected', () => {
  const cases: [string, string][] = [
    [
      'conntrack -> count(every=ten)',
      'count: every: expected a duration like 10s or 500ms (a bare number is milliseconds), got "ten"',
    ],
    ['conntrack -> count()', 'count: every is required'],
    ['conntrack(events=destory)', 'conntrack: events: expected a list of new, update, destroy; got "destory"'],
    ['conntrack(events=[new, destory])', 'conntrack: events[1]: expected one of new, update, destroy, got "destory"'],
    ['conntrack(family=ipv5)', 'conntrack: family: expected one of ipv4, ipv6, all, got "ipv5"'],
    ['conntrack -> count(every=10s, evry=1)', 'count: unknown parameter "evry" (it takes by, every, lateness)'],
    ['conntrack -> sample(rate=2)', 'sample: rate: expected a number at most 1, got 2'],
    ['conntrack -> top(by=orig.src, n=0, every=1s)', 'top: n: expected a number above 0, got 0'],
    ['conntrack -> project()', 'project: fields is required'],
    [
      'conntrack -> count(every=[1])',
      'count: every: expected a duration like 10s or 500ms (a bare number is milliseconds), got [1]',
    ],
  ];
  it.each(cases)('%s', (graph, message) => {
    expect(messages(graph)).toEqual([message]);
  });
});

describe('periods', () => {
  const zero = (node: string, param: string, got = '0') =>
    `${node}: ${param}: expected a period above zero like 10s or 500ms (a bare number is milliseconds), got ${got}`;
  const cases: [string, string][] = [
    ['conntrack -> count(every=0)', zero('count', 'every')],
    ['conntrack -> count(every=0s)', zero('count', 'every')],
    ['conntrack -> sum(field=orig.sport, every=0ms)', zero('sum', 'every')],
    ['conntrack -> top(by=orig.src, every=0)', zero('top', 'every')],
    ['conntrack -> window(every=0)', zero('window', 'every')],
    ['conntrack -> dedupe(by=orig.src, window=0)', zero('dedupe', 'window')],
    [
      'conntrack -> count(every=-5)',
      'count: every: expected a duration like 10s or 500ms (a bare number is milliseconds), got -5',
    ],
    ['conntrack -> ratelimit(rate=0)', 'ratelimit: rate: expected a number above 0, got 0'],
  ];
  it.each(cases)('%s is refused', (graph, message) => {
    expect(messages(graph)).toEqual([message]);
  });

  it('takes a bare number as milliseconds', () => {
    expect(messages('conntrack -> count(every=500)')).toEqual([]);
    expect(messages('conntrack -> dedupe(by=orig.src, window=1.5s)')).toEqual([]);
  });
});

describe('did you mean', () => {
  it('suggests the nearest registered node name', () => {
    expect(messages('conntrak -> count(every=1s)')).toEqual([
      '"conntrak" is neither a source nor a filter; did you mean "conntrack"?',
    ]);
    expect(messages('conntrack -> cuont(every=1s)')).toEqual([
      '"cuont" is neither a source nor a filter; did you mean "count"?',
    ]);
    expect(messages('zzzzzz')).toEqual(['"zzzzzz" is neither a source nor a filter']);
  });

  it('is bounded', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('a'.repeat(10_000), 'b'.repeat(10_000))).toBe(64);
    expect(suggestNode(`conntrack${'x'.repeat(100)}`)).toBeUndefined();
    expect(closestName('dn', ['dns', 'arp'])).toBe('dns');
    expect(closestName('xyz', ['dns', 'arp'])).toBeUndefined();
  });
});
