/**
 * HOST:PORT parsing, shared by every layer that takes an address on the
 * command line (collectors of export/, the metrics listener of flowgrabd):
 * `10.0.0.1:4739`, `[2001:db8::1]:2055`, `collector.lan:9995`.
 */
import { FlowgrabError } from '../errors.js';

/** A parsed HOST:PORT (`[IPv6]:PORT` accepted). */
export interface HostPort {
  /** Host name or address (IPv6 without brackets). */
  host: string;
  /** Port, 1–65535. */
  port: number;
}

/** `what` names the address in the error (e.g. `collector`, `--metrics`). */
export function parseHostPort(text: string, what = 'collector'): HostPort {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]\s]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !(port >= 1 && port <= 65535))
    throw new FlowgrabError(
      'FG_ERR_INVALID_ARGUMENT',
      `${what} address must be HOST:PORT or [IPv6]:PORT with a port from 1 to 65535, got ${JSON.stringify(text)}`,
    );
  return { host: m[1], port };
}
