// The embedded broker: aedes behind a TCP listener (plain MQTT, as spind's
// own mosquitto on 1883) and an HTTP server upgrading `/mqtt` to WebSocket
// (as its websockets listener on 1884, which the web view uses). The bridge
// publishes into aedes directly, without a client connection of its own.
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { Aedes, type AedesPublishPacket } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { accessHandlers, type BrokerAccess } from './access.js';
import { type QueueLimits, SerialQueue } from './serial-queue.js';
import { guarded, MAX_MQTT_PACKET } from './size-guard.js';
import { COMMANDS_TOPIC, hostPort, RPC_REQUEST_TOPIC, type Transport, type TransportEvents } from './transport.js';

export interface EmbeddedOptions {
  readonly host: string;
  readonly tcpPort: number;
  readonly wsPort: number;
  /** Publishes waiting for aedes; more are dropped. */
  readonly queue: QueueLimits;
  /** Logins, topic rules and WebSocket origins (access.ts). */
  readonly access?: BrokerAccess;
}

export const WS_PATH = '/mqtt';
/**
 * Connections each listener takes at once (plain MQTT, WebSocket); past it new ones are closed at once.
 * Anonymous clients may connect (SPIN's traffic topics are public): without a bound, a LAN host could hold
 * file descriptors and broker state until the app ran out.
 */
export const MAX_BROKER_CONNECTIONS = 256;

export async function startEmbeddedBroker(options: EmbeddedOptions, events: TransportEvents): Promise<Transport> {
  const access = options.access ?? {};
  const broker = await Aedes.createBroker({
    drainTimeout: 10_000,
    heartbeatInterval: 60_000,
    ...accessHandlers(access),
  });
  // A client that misbehaves only loses its own connection; nothing is logged here.
  broker.on('clientError', () => {});
  broker.on('connectionError', () => {});

  const sockets = new Set<Socket>();
  const tcp = createTcpServer((socket) => {
    track(sockets, socket);
    broker.handle(guarded(socket));
  });
  const http = createHttpServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end(`MQTT over WebSocket at ${WS_PATH}\n`);
  });
  http.on('connection', (socket) => track(sockets, socket));
  tcp.maxConnections = MAX_BROKER_CONNECTIONS;
  http.maxConnections = MAX_BROKER_CONNECTIONS;
  // A web page elsewhere must not read or write through a browser on the router's network.
  const originAllowed = access.originAllowed ?? (() => true);
  const wss = new WebSocketServer({
    server: http,
    path: WS_PATH,
    verifyClient: (info: { origin?: string }) => originAllowed(info.origin || undefined),
    // One WebSocket message holds whole MQTT packets: none may be over the limit (ws allows 100 MiB).
    maxPayload: MAX_MQTT_PACKET + 8,
  });
  wss.on('connection', (ws, req) => {
    const stream = createWebSocketStream(ws);
    stream.on('error', () => ws.terminate());
    broker.handle(guarded(stream), req);
  });
  wss.on('error', () => {});

  try {
    await listen(tcp, options.tcpPort, options.host, 'MQTT');
    await listen(http, options.wsPort, options.host, 'MQTT over WebSocket');
  } catch (error) {
    await closeAll(broker, tcp, http, wss, sockets);
    throw error;
  }

  const deliver = (packet: AedesPublishPacket, done: () => void): void => {
    events.onRequest(Buffer.from(packet.payload));
    done();
  };
  await new Promise<void>((resolve) => broker.subscribe(RPC_REQUEST_TOPIC, deliver, resolve));
  const command = (packet: AedesPublishPacket, done: () => void): void => {
    events.onCommand?.(Buffer.from(packet.payload));
    done();
  };
  await new Promise<void>((resolve) => broker.subscribe(COMMANDS_TOPIC, command, resolve));

  let closed = false;
  const queue = new SerialQueue(options.queue, (item, done) => {
    broker.publish(
      {
        cmd: 'publish',
        topic: item.topic,
        payload: Buffer.from(item.payload),
        qos: 0,
        retain: item.retain,
        dup: false,
      },
      (error) => done(error),
    );
  });
  const tcpPort = (tcp.address() as AddressInfo).port;
  const wsPort = (http.address() as AddressInfo).port;
  const transport: Transport = {
    url: `mqtt://${hostPort(options.host, tcpPort)}`,
    wsUrl: `ws://${hostPort(options.host, wsPort)}${WS_PATH}`,
    get connected() {
      return !closed;
    },
    get lost() {
      return queue.lost;
    },
    publish(topic, payload, retain) {
      return !closed && queue.push({ topic, payload, retain });
    },
    async close() {
      if (closed) return;
      closed = true;
      queue.stop();
      await closeAll(broker, tcp, http, wss, sockets);
    },
  };
  events.onConnect(transport);
  return transport;
}

function track(sockets: Set<Socket>, socket: Socket): void {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());
}

function listen(server: Server | HttpServer, port: number, host: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(
        new Error(
          `embedded broker: cannot listen for ${what} on ${hostPort(host, port)}: ${error.code ?? error.message}`,
          { cause: error },
        ),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

async function closeAll(
  broker: Aedes,
  tcp: Server,
  http: HttpServer,
  wss: WebSocketServer,
  sockets: Set<Socket>,
): Promise<void> {
  for (const client of wss.clients) client.terminate();
  for (const socket of sockets) socket.destroy();
  await Promise.all([
    new Promise<void>((resolve) => wss.close(() => resolve())),
    new Promise<void>((resolve) => (tcp.listening ? tcp.close(() => resolve()) : resolve())),
    new Promise<void>((resolve) => (http.listening ? http.close(() => resolve()) : resolve())),
    new Promise<void>((resolve) => broker.close(() => resolve())),
  ]);
}
