// JSON-RPC 2.0 over `POST /spin_api/jsonrpc`, as SPIN's bubble app calls it:
// a random id, a 5 s timeout, a few retries on timeout or 502; an `error`
// reply becomes an RpcError carrying SPIN's code and message.

const ENDPOINT = '/spin_api/jsonrpc';
const TIMEOUT_MS = 5000;
const RETRIES = 3;

export class RpcError extends Error {
  constructor(method, code, message) {
    super(`${method}: ${message} (code ${code})`);
    this.name = 'RpcError';
    this.code = code;
  }
}

/** Calls `method` with named `params` (omitted when undefined) and returns its result. */
export async function rpc(method, params) {
  const request = { jsonrpc: '2.0', id: Math.floor(Math.random() * 2 ** 31), method };
  if (params !== undefined) request.params = params;
  const body = JSON.stringify(request);
  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      response = await fetch(ENDPOINT, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      if (error.name === 'TimeoutError' && attempt < RETRIES) continue;
      throw new Error(`${method}: ${error.message}`);
    }
    if (response.status === 502 && attempt < RETRIES) continue;
    if (!response.ok) throw new Error(`${method}: HTTP ${response.status}`);
    const reply = JSON.parse(await response.text());
    if (reply.error) throw new RpcError(method, reply.error.code, reply.error.message);
    return reply.result;
  }
}
