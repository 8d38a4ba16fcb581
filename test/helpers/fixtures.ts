import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type NetlinkMessage, splitMessages } from '../../src/netlink/nlmsg.js';

export interface Fixture {
  kernel: string;
  command: string;
  datagrams: { groups: number; hex: string }[];
}

const dir = join(import.meta.dirname, '../fixtures/netlink');

export function loadFixture(name: string): Fixture {
  return JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as Fixture;
}

/** Every netlink message of a fixture, ctnetlink ones only when `subsys` is given. */
export function fixtureMessages(name: string, subsys?: number): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  for (const d of loadFixture(name).datagrams) {
    for (const m of splitMessages(Buffer.from(d.hex, 'hex')))
      if (subsys === undefined || m.type >> 8 === subsys) out.push(m);
  }
  return out;
}
