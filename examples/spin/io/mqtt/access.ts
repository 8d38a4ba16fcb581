// Access rules of the embedded broker. spind's own mosquitto let anyone
// publish anything; here:
//  - only the app publishes under `SPIN/traffic` (its publishes come from
//    inside the broker, with no client) and on the RPC reply topic;
//  - `SPIN/jsonrpc/q` (which changes the firewall) needs a login from the
//    credentials file; a wrong login is refused at CONNECT;
//  - no client retains anything (no fake retained `SPIN/traffic/node/<id>`);
//  - anonymous clients may subscribe under `SPIN/traffic` and to
//    `SPIN/commands`, and publish on `SPIN/commands` (what SPIN's page needs);
//    logged-in clients may subscribe to anything, `#` included.
// With no credentials at all (auth off), every client counts as logged in,
// but the topic and retain rules still hold.
import type { AedesOptions, Client } from 'aedes';
import type { Credentials } from '../auth.js';
import { COMMANDS_TOPIC, RPC_REPLY_TOPIC } from './transport.js';

export const TRAFFIC_ROOT = 'SPIN/traffic';

export interface BrokerAccess {
  /** undefined: no logins checked (every client may use the RPC topic). */
  readonly credentials?: Credentials;
  /** The WebSocket listener's Origin check (undefined Origin: not a browser). */
  readonly originAllowed?: (origin: string | undefined) => boolean;
}

const underTraffic = (topic: string) => topic === TRAFFIC_ROOT || topic.startsWith(`${TRAFFIC_ROOT}/`);

/** May a client publish here (logged in or not)? */
export function mayPublish(topic: string, retain: boolean, loggedIn: boolean): boolean {
  if (retain || underTraffic(topic) || topic === RPC_REPLY_TOPIC) return false;
  if (topic === COMMANDS_TOPIC) return true;
  return loggedIn;
}

/** May a client subscribe to this filter? Anonymous ones only under SPIN/traffic (no wildcard above it). */
export function maySubscribe(filter: string, loggedIn: boolean): boolean {
  if (loggedIn) return true;
  return underTraffic(filter) || filter === COMMANDS_TOPIC;
}

export function accessHandlers(access: BrokerAccess): Partial<AedesOptions> {
  const loggedIn = new WeakSet<Client>();
  const open = access.credentials === undefined;
  return {
    authenticate(client, username, password, done) {
      if (open) {
        loggedIn.add(client);
        return done(null, true);
      }
      if (username === undefined && password === undefined) return done(null, true);
      void access.credentials?.check(username, password?.toString('utf8')).then(
        (ok) => {
          if (ok) {
            loggedIn.add(client);
            return done(null, true);
          }
          done(Object.assign(new Error('bad user name or password'), { returnCode: 4 as const }), null);
        },
        (err: Error) => done(Object.assign(err, { returnCode: 4 as const }), null),
      );
    },
    authorizePublish(client, packet, callback) {
      // No client: the app's own publish into the broker.
      if (!client) return callback(null);
      if (mayPublish(packet.topic, packet.retain, loggedIn.has(client))) return callback(null);
      callback(new Error(`publish to ${packet.topic} refused`));
    },
    authorizeSubscribe(client, sub, callback) {
      if (maySubscribe(sub.topic, loggedIn.has(client))) return callback(null, sub);
      // null: a refused subscription (granted 0x80); the connection stays.
      callback(null, null);
    },
  };
}
