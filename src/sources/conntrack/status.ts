import { IPS_STATUS_BITS } from '../../netlink/conntrack/enums.js';

/** IPS_* status bits → their names, lowest bit first. */
export function statusNames(status: number): string[] {
  const out: string[] = [];
  for (const [bit, name] of IPS_STATUS_BITS) if (status & bit) out.push(name);
  return out;
}
