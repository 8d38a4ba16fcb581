/** `connect(path)`: flow handles served by flowgrabd, with the same API as `new Flowgrab()`. */
import type { RemoteFlowgrab } from './daemon/client.js';

/** Connects to flowgrabd's Unix socket (e.g. `/run/flowgrab/flowgrab.sock`); identity comes from the kernel. */
export async function connect(path: string): Promise<RemoteFlowgrab> {
  const { RemoteFlowgrab } = await import('./daemon/client.js');
  return RemoteFlowgrab.connect(path);
}
