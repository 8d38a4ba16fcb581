/**
 * The NATS client is an optional dependency (like `mqtt`): loaded when a NATS
 * sink or source is made, with an error that says what to install.
 */
import { FlowgrabError } from '../../errors.js';

export type NatsTransport = typeof import('@nats-io/transport-node');
export type NatsJetStream = typeof import('@nats-io/jetstream');

export async function loadNats(): Promise<{ transport: NatsTransport; js: NatsJetStream }> {
  try {
    const [transport, js] = await Promise.all([import('@nats-io/transport-node'), import('@nats-io/jetstream')]);
    return { transport, js };
  } catch (err) {
    throw new FlowgrabError(
      'FG_ERR_INVALID_STATE',
      `NATS needs the optional dependencies "@nats-io/transport-node" and "@nats-io/jetstream": npm install @nats-io/transport-node @nats-io/jetstream (${(err as Error).message})`,
      { op: 'nats.load', cause: err },
    );
  }
}

/** `nats://a:4222,nats://b:4222` or a list: each checked, at most 32. */
export function parseServers(urls: string | string[]): string[] {
  const list = (Array.isArray(urls) ? urls : urls.split(',')).map((u) => u.trim()).filter(Boolean);
  if (list.length === 0 || list.length > 32)
    throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `give 1 to 32 NATS server URLs, got ${list.length}`);
  for (const u of list)
    if (!/^(nats|tls):\/\/[^\s/]+$/.test(u) && !/^[A-Za-z0-9.[\]:-]+:\d+$/.test(u))
      throw new FlowgrabError(
        'FG_ERR_INVALID_ARGUMENT',
        `not a NATS server URL: ${JSON.stringify(u)} (nats://HOST:PORT)`,
      );
  return list;
}
