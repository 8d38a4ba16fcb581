/** Reading and writing /proc/sys in a given network namespace (net sysctls are per netns). */
import { readFileSync, writeFileSync } from 'node:fs';
import { FlowgrabError } from '../errors.js';
import { withNetns } from '../netlink/syscall.js';

const path = (key: string) => `/proc/sys/${key.replaceAll('.', '/')}`;

function inNetns<T>(netns: string | undefined, fn: () => T): T {
  return netns ? withNetns(netns, fn) : fn();
}

export function readSysctl(key: string, netns?: string): string | undefined {
  try {
    return inNetns(netns, () => readFileSync(path(key), 'utf8').trim());
  } catch (err) {
    if (err instanceof FlowgrabError) throw err;
    return undefined;
  }
}

export function writeSysctl(key: string, value: string, netns?: string): void {
  try {
    inNetns(netns, () => writeFileSync(path(key), value));
  } catch (cause) {
    if (cause instanceof FlowgrabError) throw cause;
    throw new FlowgrabError('FG_ERR_PERMISSION', `cannot set ${key}=${value}${netns ? ` in ${netns}` : ''}`, {
      op: 'sysctl',
      cause,
    });
  }
}
