import { describe, expect, it } from 'vitest';
import { canonicalIp, compareIps, parsePrefix, prefixContains } from '../../../examples/spin/domain/ip.js';
import { IpList, matchListName, parseEntry } from '../../../examples/spin/domain/lists.js';
import { arg, method, RpcDispatcher, RpcError } from '../../../examples/spin/io/rpc.js';

const seen: unknown[] = [];
const d = new RpcDispatcher([
  method({ name: 'add', args: { a: arg.integer, b: arg.integer }, hasResult: true, run: ({ a, b }) => a + b }),
  method({ name: 'noop', args: { s: arg.string }, hasResult: false, run: ({ s }) => void seen.push(s) }),
  method({
    name: 'fail',
    args: {},
    hasResult: true,
    run: () => {
      throw new RpcError('Unknown node id', -2);
    },
  }),
  method({ name: 'blob', args: { x: arg.complex }, hasResult: true, run: ({ x }) => x }),
  method({ name: 'empty', args: {}, hasResult: true, run: () => 'ok', emptyStringParams: true }),
]);

describe('JSON-RPC with spind semantics', () => {
  it("types a method's params by its schemas (checked by tsc)", () => {
    const m = method({
      name: 'typed',
      args: { n: arg.integer, s: arg.string },
      optional: { force: arg.integer },
      hasResult: true,
      // @ts-expect-error n is a number, not a string
      run: ({ n, s, force }) => n.toUpperCase() + s.toUpperCase() + (force ?? 0).toFixed(),
    });
    expect(m.name).toBe('typed');
  });

  it('lists each method with its arguments in order and their spind types', () => {
    const add = (d.describe() as { 'rpc-name': string; 'rpc-args': unknown[] }[]).find((m) => m['rpc-name'] === 'add');
    expect(add?.['rpc-args']).toEqual([
      { 'rpc-arg-name': 'a', 'rpc-arg-type': 'integer' },
      { 'rpc-arg-name': 'b', 'rpc-arg-type': 'integer' },
    ]);
    const blob = (d.describe() as { 'rpc-name': string; 'rpc-args': unknown[] }[]).find(
      (m) => m['rpc-name'] === 'blob',
    );
    expect(blob?.['rpc-args']).toEqual([{ 'rpc-arg-name': 'x', 'rpc-arg-type': 'complex' }]);
  });

  it('answers a request whose id is not a string, a number or null, without echoing the id', async () => {
    // An id nested 100 000 arrays deep: writing it back overflowed the stack (HTTP 500, no MQTT reply).
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const text = `{"jsonrpc":"2.0","id":${deep},"method":"add","params":{"a":1,"b":2}}`;
    const reply = await d.handleText(text);
    expect(JSON.parse(reply ?? '')).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: 1, message: "'id' must be a string, a number or null" },
    });
    for (const id of [{ a: 1 }, [1], true]) {
      const r = (await d.handle({ jsonrpc: '2.0', id, method: 'add', params: { a: 1, b: 2 } })) as Record<
        string,
        unknown
      >;
      expect(r.id, JSON.stringify(id)).toBeNull();
      expect(r.error).toEqual({ code: 1, message: "'id' must be a string, a number or null" });
    }
    for (const id of ['x', 7, null])
      expect(await d.handle({ jsonrpc: '2.0', id, method: 'add', params: { a: 1, b: 2 } })).toEqual({
        jsonrpc: '2.0',
        id,
        result: 3,
      });
  });

  it('truncates numbers to integers and checks arity, names and types', async () => {
    expect(await d.handle({ jsonrpc: '2.0', id: 1, method: 'add', params: { a: 2.9, b: -1.5 } })).toEqual({
      jsonrpc: '2.0',
      id: 1,
      result: 1,
    });
    const err = async (params: unknown) =>
      ((await d.handle({ jsonrpc: '2.0', id: 1, method: 'add', params })) as { error: unknown }).error;
    expect(await err({ a: 1 })).toEqual({ code: -1, message: 'Wrong number of arguments' });
    expect(await err({ a: 1, c: 2 })).toEqual({ code: -1, message: 'No such argument registered' });
    expect(await err({ a: 1, b: '2' })).toEqual({ code: -1, message: 'Wrong type of argument' });
    expect(await err({ a: 1, b: false })).toEqual({ code: -1, message: 'Wrong type of argument' });
    expect(await err([1, 2])).toEqual({ code: 3, message: "'params' object must be a dict" });
    expect(await err(null)).toEqual({ code: 3, message: "'params' object must be a dict" });
  });

  it('omits result for void methods, returns the bare result for notifications, nothing for void notifications', async () => {
    expect(await d.handle({ jsonrpc: '2.0', id: 'x', method: 'noop', params: { s: 'hi' } })).toEqual({
      jsonrpc: '2.0',
      id: 'x',
    });
    expect(await d.handle({ jsonrpc: '2.0', method: 'add', params: { a: 1, b: 1 } })).toBe(2);
    expect(await d.handle({ jsonrpc: '2.0', method: 'noop', params: { s: 'n' } })).toBeUndefined();
    expect(seen).toEqual(['hi', 'n']);
  });

  it("uses a method's own error code, accepts complex values and '' params where allowed", async () => {
    expect(await d.handle({ jsonrpc: '2.0', id: 2, method: 'fail' })).toEqual({
      jsonrpc: '2.0',
      id: 2,
      error: { code: -2, message: 'Unknown node id' },
    });
    expect(await d.handle({ jsonrpc: '2.0', id: 3, method: 'blob', params: { x: { y: [1] } } })).toEqual({
      jsonrpc: '2.0',
      id: 3,
      result: { y: [1] },
    });
    expect(
      ((await d.handle({ jsonrpc: '2.0', id: 3, method: 'blob', params: { x: 1 } })) as { error: unknown }).error,
    ).toEqual({ code: -1, message: 'Wrong type of argument' });
    expect(await d.handle({ jsonrpc: '2.0', id: 4, method: 'empty', params: '' })).toEqual({
      jsonrpc: '2.0',
      id: 4,
      result: 'ok',
    });
    expect(
      ((await d.handle({ jsonrpc: '2.0', id: 4, method: 'add', params: '' })) as { error: unknown }).error,
    ).toEqual({ code: 3, message: "'params' object must be a dict" });
  });

  it('handles envelopes, parse errors and batches', async () => {
    expect(await d.handleText('not json')).toBe(
      '{"jsonrpc":"2.0","error":{"code":1,"message":"Wrong JSON-RPC version, expected 2.0"}}',
    );
    expect(await d.handle({ jsonrpc: '1.0', id: 5, method: 'add' })).toEqual({
      jsonrpc: '2.0',
      id: 5,
      error: { code: 1, message: 'Wrong JSON-RPC version, expected 2.0' },
    });
    expect(await d.handle({ jsonrpc: '2.0', id: 6, method: ['add'] })).toEqual({
      jsonrpc: '2.0',
      id: 6,
      error: { code: 2, message: "'method' object must be a string" },
    });
    expect(await d.handle({ jsonrpc: '2.0', id: 7, method: 'nope' })).toEqual({
      jsonrpc: '2.0',
      id: 7,
      error: { code: -1, message: 'No such function registered' },
    });
    expect(
      await d.handle([
        { jsonrpc: '2.0', id: 1, method: 'add', params: { a: 1, b: 2 } },
        { jsonrpc: '2.0', method: 'noop', params: { s: 'quiet' } },
        { jsonrpc: '2.0', id: 2, method: 'nope' },
      ]),
    ).toEqual([
      { jsonrpc: '2.0', id: 1, result: 3 },
      { jsonrpc: '2.0', id: 2, error: { code: -1, message: 'No such function registered' } },
    ]);
    expect(await d.handle([{ jsonrpc: '2.0', method: 'noop', params: { s: 'q' } }])).toBeUndefined();
  });
});

describe('addresses and lists', () => {
  it('canonical addresses, SPIN order, prefixes', () => {
    expect(canonicalIp('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    // IPv4-mapped in dotted form, as flowgrab's records print them (RFC 5952 §5), however it was written.
    expect(canonicalIp('::ffff:192.0.2.1')).toBe('::ffff:192.0.2.1');
    expect(canonicalIp('::FFFF:c000:0201')).toBe('::ffff:192.0.2.1');
    expect(canonicalIp('fe80::1%br0')).toBe('fe80::1');
    expect(canonicalIp('fd77:0:0:1:0:0:0:11')).toBe('fd77:0:0:1::11');
    expect(canonicalIp('192.0.2.300')).toBeUndefined();
    expect(['2001:db8::1', '10.0.0.2', '10.0.0.10', '::1'].sort(compareIps)).toEqual([
      '10.0.0.2',
      '10.0.0.10',
      '::1',
      '2001:db8::1',
    ]);
    const p = parsePrefix('192.0.2.77/24')!;
    expect(p.text).toBe('192.0.2.0/24');
    expect(prefixContains(p, '192.0.2.200')).toBe(true);
    expect(prefixContains(p, '192.0.3.1')).toBe(false);
    expect(parsePrefix('10.0.0.0/33')).toBeUndefined();
  });

  it("spind's list-name prefix match and list entries with prefixes and names", () => {
    expect(['', 'b', 'bl', 'block', 'i', 'a', 'blocks', 'x'].map(matchListName)).toEqual([
      'block',
      'block',
      'block',
      'block',
      'ignore',
      'allow',
      undefined,
      undefined,
    ]);
    const l = new IpList('block');
    l.add(parseEntry('198.51.100.0/24')!);
    l.add(parseEntry('Shop.Test')!);
    expect(l.containsIp('198.51.100.10')).toBe(true);
    expect(l.containsIp('198.51.101.10')).toBe(false);
    expect(l.containsDomain('www.shop.test.')).toBe(true);
    expect(l.containsDomain('shop.test')).toBe(true);
    expect(l.containsDomain('notshop.test')).toBe(false);
    // A label holding a dot (as flowgrab writes it, escaped) is one label: "x.shop" under test is not under shop.test.
    expect(l.containsDomain('x\\.shop.test.')).toBe(false);
    expect(l.containsDomain('a\\\\.shop.test.')).toBe(true); // an escaped backslash, then a real dot
    expect(l.texts()).toEqual(['198.51.100.0/24', 'Shop.Test.']);
    expect(parseEntry('not an ip!')).toBeUndefined();
  });
});
