/**
 * A command the core refuses (unknown node, full list, a block that would cut
 * the router…), with the JSON-RPC error code spind gives it (-1 unless
 * stated); io/rpc.ts answers it as that error.
 */
export class SpinError extends Error {
  constructor(
    message: string,
    readonly code = -1,
  ) {
    super(message);
  }
}
