/**
 * NflogReader on the real kernel with its default reader, the batched one (a
 * worker thread draining the socket): close() frees the group before it
 * returns, so a reader opened right after binds it at once, and that reader
 * gets the packets the group logs.
 */
import { describe, expect, it } from 'vitest';
import { openNativeTransport } from '../../src/netlink/native.js';
import type { TransportOptions } from '../../src/netlink/transport.js';
import { NflogReader } from '../../src/sources/nflog/reader.js';
import { type Netns, waitFor } from '../../src/testing/lab/index.js';
import { fileLab } from '../helpers/lab.js';

const GROUP = 42;
const PORT = 9;
let ns: Netns;

fileLab(async (lab) => {
  ns = await lab.netns('nflog');
  await ns.ipBatch(['link set lo up']);
  await ns.exec(['nft', '-f', '-'], {
    input: [
      'table inet fgnflog {',
      '  chain o {',
      '    type filter hook output priority 0;',
      `    udp dport ${PORT} log group ${GROUP} queue-threshold 1`,
      '  }',
      '}',
      '',
    ].join('\n'),
  });
});

/** One UDP datagram to the logged port on the namespace's loopback. */
const sendOne = (tag: string) => ns.exec(['bash', '-c', `echo ${tag} > /dev/udp/127.0.0.1/${PORT}`]);

describe('NflogReader with the default (batched) reader', () => {
  it('close then open at once: the next bind succeeds, every time, and the new reader gets the packets', async () => {
    // The real transport, watched: which reader the default options ask for.
    const asked: TransportOptions[] = [];
    const transport = (o: TransportOptions) => {
      asked.push(o);
      return openNativeTransport(o);
    };
    for (let i = 0; i < 5; i++) {
      const reader = await NflogReader.open({ group: GROUP, netns: ns.name, transport });
      expect(asked.at(-1)?.batched).toBe(true);
      const got: string[] = [];
      reader.onPacket((p) => got.push(p.payload.subarray(28).toString().trim()));
      try {
        await sendOne(`pkt${i}`);
        await waitFor(() => got.length > 0, { timeoutMs: 10_000, what: `packet ${i} logged to group ${GROUP}` });
        expect(got).toEqual([`pkt${i}`]);
        expect(reader.lost).toBe(0);
      } finally {
        reader.close(); // nothing to await: the group must be free when close() returns
      }
    }
    expect(asked).toHaveLength(5);
  });
});
