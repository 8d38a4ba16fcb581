// MQTT bridge for the SPIN example: an embedded broker (TCP and WebSocket)
// or an external one; publishes the core's messages and answers JSON-RPC
// over `SPIN/jsonrpc/q` → `SPIN/jsonrpc/a`. (Being built; see contract.ts.)
import type { MqttBridge, MqttOptions, SpinCore } from './contract.js';

export async function startMqtt(_core: SpinCore, _options: MqttOptions): Promise<MqttBridge> {
  throw new Error('the MQTT bridge is not built yet');
}
