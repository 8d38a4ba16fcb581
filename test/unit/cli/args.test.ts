/** The CLI's argument parsers: what they accept, and that they reject the rest with a message. */
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { listOf, positiveInt, seconds, wholeNumber } from '../../../src/cli/args.js';
import { errorLine } from '../../../src/cli/output.js';
import { lacksNetAdmin, privilegeHint } from '../../../src/cli/privilege.js';
import { FlowgrabError } from '../../../src/errors.js';

describe('argument parsers', () => {
  it('positiveInt rejects 0, negatives, fractions, junk and unsafe integers', () => {
    const p = positiveInt('--count');
    expect(p('1')).toBe(1);
    expect(p('250')).toBe(250);
    for (const bad of ['0', '-1', '1.5', '', ' ', 'ten', '1e3', '0x10', '99999999999999999999']) {
      expect(() => p(bad), bad).toThrow(InvalidArgumentError);
    }
    expect(() => p('0')).toThrow('--count must be a whole number ≥ 1');
  });

  it('wholeNumber takes 0 and hex (a mark), nothing negative', () => {
    const w = wholeNumber('--mark');
    expect(w('0')).toBe(0);
    expect(w('0x10')).toBe(16);
    for (const bad of ['-1', '1.5', '', 'x']) expect(() => w(bad), bad).toThrow(InvalidArgumentError);
  });

  it('seconds wants a positive number', () => {
    expect(seconds('0.5')).toBe(0.5);
    for (const bad of ['0', '-2', '', 'soon', 'Infinity'])
      expect(() => seconds(bad), bad).toThrow(InvalidArgumentError);
  });

  it('listOf names the unknown item and what is allowed', () => {
    const l = listOf('event', ['new', 'update', 'destroy'] as const);
    expect(l('new,destroy')).toEqual(['new', 'destroy']);
    expect(() => l('new,destory')).toThrow('unknown event "destory" (new, update, destroy)');
  });
});

describe('error style', () => {
  it('is one line: PROG: error: MESSAGE', () => {
    expect(errorLine('boom')).toBe('flowgrab: error: boom\n');
    expect(errorLine('two\nlines', 'flowgrabd')).toBe('flowgrabd: error: two\n');
  });
});

describe('privilege hints', () => {
  const status = (capEff: string) => `Name:\tnode\nCapEff:\t${capEff}\n`;
  it('reads CAP_NET_ADMIN (bit 12) from CapEff', () => {
    expect(lacksNetAdmin(status('000001ffffffffff'))).toBe(false);
    expect(lacksNetAdmin(status('0000000000000000'))).toBe(true);
    expect(lacksNetAdmin(status('0000000000001000'))).toBe(false);
    expect(lacksNetAdmin(status('0000000000000fff'))).toBe(true);
  });

  it('names the missing capability for the misleading kernel answers, and nothing else', () => {
    const busy = new FlowgrabError('FG_ERR_BUSY', 'NFLOG group 53 is already bound by another reader', {
      op: 'nflog bind',
    });
    const member = new FlowgrabError('FG_ERR_NETLINK', "Couldn't add membership: operation not permitted", {
      op: 'bind',
    });
    for (const e of [busy, member]) {
      const h = privilegeHint(e);
      expect(h).toContain('missing CAP_NET_ADMIN');
      expect(h).toContain('--daemon');
      expect(h).toContain(e.message);
    }
    expect(privilegeHint(new FlowgrabError('FG_ERR_NETNS', 'no namespace x', { op: 'netns' }))).toBeUndefined();
  });
});
