/**
 * Sources whose kernel resources outlive the synchronous unsubscribe: a
 * closed DNS feed removes its nft table, a closed NFQUEUE feed its rules
 * and queue binding, after the fact. A process about to exit awaits this.
 */
import { dnsTeardown } from './dns/source.js';
import { nfqueueTeardown } from './nfqueue/source.js';

/** Resolves once every source closed so far has released what it holds in the kernel (rules, tables). */
export async function sourcesTornDown(): Promise<void> {
  await Promise.all([dnsTeardown(), nfqueueTeardown()]);
}
