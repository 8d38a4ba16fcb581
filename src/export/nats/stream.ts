/** The stream records go to: used as it is when it exists, created when missing (file storage, replicas, dedupe window). */
import { FlowgrabError } from '../../errors.js';
import type { NatsJetStream } from './load.js';
import type { StreamOptions } from './stream-options.js';

export type { StreamOptions } from './stream-options.js';

import { streamSubjects } from './subject.js';

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function checkStreamOptions(o: StreamOptions): void {
  if (!NAME.test(o.name))
    throw new FlowgrabError(
      'FG_ERR_INVALID_ARGUMENT',
      `stream name must be 1..64 of A-Z a-z 0-9 _ -, got ${JSON.stringify(o.name)}`,
    );
  if (!Number.isInteger(o.replicas) || o.replicas < 1 || o.replicas > 5)
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `replicas must be 1..5, got ${o.replicas}`);
  if (!Number.isFinite(o.duplicateWindowMs) || o.duplicateWindowMs < 1000 || o.duplicateWindowMs > 7 * 86_400_000)
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', 'duplicate window must be 1 s .. 7 days');
}

// biome-ignore lint/suspicious/noExplicitAny: the connection type comes from an optional module
export async function ensureStream(lib: NatsJetStream, nc: any, o: StreamOptions): Promise<void> {
  const jsm = await lib.jetstreamManager(nc, { timeout: 5000 });
  try {
    await jsm.streams.info(o.name);
    return;
  } catch (err) {
    if (
      (err as { code?: number }).code !== lib.JetStreamApiCodes.StreamNotFound &&
      (err as Error).name !== 'StreamNotFoundError'
    )
      throw err;
  }
  await jsm.streams.add({
    name: o.name,
    subjects: o.subjects ?? streamSubjects(o.template ?? 'flowgrab.>'),
    storage: lib.StorageType.File,
    num_replicas: o.replicas,
    duplicate_window: o.duplicateWindowMs * 1_000_000,
  });
}
