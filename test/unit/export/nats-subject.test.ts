import { describe, expect, it } from 'vitest';
import { parseServers } from '../../../src/export/nats/load.js';
import { checkNatsSourceOptions } from '../../../src/export/nats/source.js';
import { checkStreamOptions } from '../../../src/export/nats/stream.js';
import { compileSubject, decodeEntry, encodeEntry, msgId, streamSubjects } from '../../../src/export/nats/subject.js';
import { parseGraph } from '../../../src/filters/parser.js';

const flow = { type: 'flow', id: 7, reason: 'end', start: 1, end: 2, src: '10.0.0.1', netns: 'fg.lab>x' };

describe('NATS subjects and message ids', () => {
  it('fills {host}, {source}, {netns} with single harmless tokens', () => {
    const s = compileSubject('flowgrab.{host}.{source}.{netns}', 'r1.example.com');
    expect(s(flow)).toBe('flowgrab.r1_example_com.conntrack.fg_lab_x');
    expect(s({ kind: 'query', qname: 'a.b' })).toBe('flowgrab.r1_example_com.dns._');
    expect(s(null)).toBe('flowgrab.r1_example_com.record._');
    expect(streamSubjects('flowgrab.{host}')).toEqual(['flowgrab.>']);
    expect(streamSubjects('{host}.x')).toEqual(['flowgrab.>']);
  });

  it('refuses wildcards, empty tokens, unknown fields and oversized templates', () => {
    for (const bad of ['flowgrab.>', 'flowgrab.*.x', 'a..b', 'a.{nope}', 'a b', '', 'x'.repeat(300), 'a.{host}>'])
      expect(() => compileSubject(bad, 'h'), bad).toThrow(/subject template/);
  });

  it('gives a record the same id every time, and different records different ids', () => {
    const j = JSON.stringify(flow);
    expect(msgId('h', flow, j)).toBe(msgId('h', flow, j));
    expect(msgId('h', flow, j)).toMatch(/^h\/conntrack\/7\/end\/[A-Za-z0-9_-]{22}$/);
    const other = { ...flow, end: 3 };
    expect(msgId('h', other, JSON.stringify(other))).not.toBe(msgId('h', flow, j));
    expect(msgId('h2', flow, j)).not.toBe(msgId('h', flow, j));
  });

  it('round-trips a spooled publish and rejects truncated ones', () => {
    const e = encodeEntry('flowgrab.a.b', 'id/1', '{"x":"é"}');
    const d = decodeEntry(e);
    expect(d && [d.subject, d.id, Buffer.from(d.data).toString()]).toEqual(['flowgrab.a.b', 'id/1', '{"x":"é"}']);
    expect(decodeEntry(e.subarray(0, 5))).toBeUndefined();
    expect(decodeEntry(Buffer.from([0xff, 0xff, 0, 0]))).toBeUndefined();
  });

  it('bounds server lists, stream names, replicas and source options', () => {
    expect(parseServers('nats://a:4222, nats://b:4222')).toEqual(['nats://a:4222', 'nats://b:4222']);
    expect(() => parseServers('')).toThrow();
    expect(() => parseServers(Array(33).fill('nats://a:1').join(','))).toThrow(/1 to 32/);
    expect(() => parseServers('http://x/y')).toThrow(/not a NATS/);
    expect(() => checkStreamOptions({ name: 'a.b', replicas: 1, duplicateWindowMs: 120_000 })).toThrow(/stream name/);
    expect(() => checkStreamOptions({ name: 'a', replicas: 9, duplicateWindowMs: 120_000 })).toThrow(/replicas/);
    expect(() => checkNatsSourceOptions({ servers: 'nats://a:1', durable: 'x y' })).toThrow(/durable/);
    expect(() => checkNatsSourceOptions({ servers: 'nats://a:1', ackWaitMs: 1 })).toThrow(/ackWait/);
  });

  it('parses the source with quoted URL lists and subjects', () => {
    const g = parseGraph(
      'nats(url="nats://a:1,nats://b:2", stream=S, subject="flowgrab.>", durable=d) -> match(reason == end)',
    );
    const steps = (g.root as unknown as { steps: { name: string; params: Record<string, unknown> }[] }).steps;
    expect(steps[0]).toMatchObject({
      name: 'nats',
      params: { url: 'nats://a:1,nats://b:2', subject: 'flowgrab.>', durable: 'd', stream: 'S' },
    });
  });
});
