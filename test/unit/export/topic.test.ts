import { describe, expect, it } from 'vitest';
import { compileTopic, topicFor } from '../../../src/export/mqtt.js';

describe('MQTT topic templates', () => {
  const rec = { family: 'ipv4', orig: { src: '10.0.0.1', dport: 443 }, weird: 'a/b+c#d', obj: { x: 1 }, empty: '' };

  it('substitutes field paths, literal text kept', () => {
    expect(topicFor('flows/{family}/{orig.src}:{orig.dport}', rec)).toBe('flows/ipv4/10.0.0.1:443');
    expect(compileTopic('fixed/topic')(rec)).toBe('fixed/topic');
    expect(compileTopic('{family}')(rec)).toBe('ipv4');
  });

  it('makes wildcards, missing, empty and non-scalar values harmless', () => {
    expect(topicFor('t/{weird}', rec)).toBe('t/a_b_c_d');
    expect(topicFor('t/{nope.deeper}/{obj}/{empty}', rec)).toBe('t/_/_/_');
    expect(topicFor('t/{family}', null)).toBe('t/_');
  });
});
