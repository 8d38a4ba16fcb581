/**
 * Why a kernel source failed for a user without privileges. The kernel's own
 * answers mislead (NFLOG's bind says EBUSY-like "already bound", conntrack's
 * event groups say "Couldn't add membership"), so the CLI names the missing
 * capability and the two ways out.
 */
import { readFileSync } from 'node:fs';
import type { FlowgrabError } from '../errors.js';

const CAP_NET_ADMIN = 12n;

/** Whether this process runs without CAP_NET_ADMIN in its effective set (read from /proc/self/status). */
export function lacksNetAdmin(status = readStatus()): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/im.exec(status);
  if (!m) return process.getuid?.() !== 0;
  return ((BigInt(`0x${m[1]}`) >> CAP_NET_ADMIN) & 1n) === 0n;
}

function readStatus(): string {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return '';
  }
}

const PRIVILEGED_CODES = new Set(['FG_ERR_BUSY', 'FG_ERR_PERMISSION', 'FG_ERR_NETLINK', 'FG_ERR_FIREWALL']);

/**
 * A message that says what is missing, for an error a kernel source raised
 * while this process lacks CAP_NET_ADMIN; undefined when the error is not of
 * that kind (a missing namespace, a bad argument).
 */
export function privilegeHint(err: FlowgrabError): string | undefined {
  const eperm = err.errno === 1 || /EPERM|not permitted|already bound/i.test(err.message);
  if (!PRIVILEGED_CODES.has(err.code) || !eperm) return undefined;
  const what = err.op ? `${err.op}: ` : '';
  return (
    `${what}missing CAP_NET_ADMIN: run as root, or through flowgrabd (flowgrab --daemon SOCKET …); ` +
    `the kernel said: ${err.message}`
  );
}
