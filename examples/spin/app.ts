/**
 * startSpin: the whole SPIN-compatible app — the core fed by flowgrab (in
 * a network namespace when asked, while the servers stay in the host's), the
 * JSON-RPC over a Unix socket and HTTP, the web view, and the MQTT bridge.
 */
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { connect, Flowgrab, runTool, sweepStaleTables } from 'flowgrab';
import { Core } from './core.js';
import { canonicalIp } from './domain/ip.js';
import type { SpinPeriods } from './domain/periods.js';
import { Credentials, defaultCredentials, Sessions } from './io/auth.js';
import { createCaptureHandler } from './io/capture.js';
import type { MqttBridge, MqttOptions, SpinCore, SpinMessage, WebHandler } from './io/contract.js';
import { reopeningFeeds } from './io/feeds.js';
import { kernelMacLookup, monitorScope } from './io/kernel-neigh.js';
import { spinRpc } from './io/methods.js';
import { startMqtt } from './io/mqtt.js';
import type { RpcDispatcher } from './io/rpc.js';
import { createSpinHttp, listenRpcSocket } from './io/servers.js';
import { SpinStore } from './io/store.js';
import { HttpGuard } from './io/web/guard.js';
import { createWebRootHandler } from './io/web/root.js';
import { createWebHandler } from './io/web/serve.js';

export interface SpinOptions {
  /** Watch this network namespace (the router's); servers stay in the process's own. */
  netns?: string;
  /** Read the kernel through flowgrabd at this socket instead of in-process. */
  daemon?: string;
  httpHost?: string;
  /** Default 13026; 0 = any free port. */
  httpPort?: number;
  rpcSocket?: string;
  /** Default: an embedded broker on 1883/1884; false = no MQTT. */
  mqtt?: MqttOptions | false;
  /** SQLite store directory. */
  stateDir: string;
  /** Addresses ignored besides the router's own (added on the first run and on reset). */
  ignore?: string[];
  periods?: Partial<SpinPeriods>;
  /** spind's names.conf form: `name: <ip-or-mac> <name>`. */
  namesFile?: string;
  /** dnsmasq lease file for DHCP names. */
  leaseFile?: string;
  /** NFLOG group for DNS (default 53). */
  dnsGroup?: number;
  /** Publish traffic between non-devices too (spind -l). */
  local?: boolean;
  /** Accept dots_signal. */
  dots?: boolean;
  /** nft table name (default `spin` → `inet flowgrab_spin`). */
  tableName?: string;
  /** Log lines (notices, errors); the library part never prints. */
  log?: (line: string) => void;
  /** Watch only these prefixes (`192.168.10.0/24`) … */
  monitorPrefixes?: string[];
  /** … and the subnets of these interfaces of the router (`br-lan.10`); neither: everything. */
  monitorInterfaces?: string[];
  /** DNS servers besides the router's own resolver whose answers may fill the name lists (see CoreOptions). */
  trustedResolvers?: string[];
  /** A spinweb static tree (SPIN's own web app) served at the same origin as the RPC (web/root.ts). */
  webRoot?: string;
  /** Sees every message the core publishes from the very start (before startSpin returns). */
  tap?: (message: SpinMessage) => void;
  /**
   * Who may use the HTTP RPC, the web view and the broker's RPC topic: a
   * credentials file (auth.ts), `false` for nobody checked (only when asked
   * for, `--no-auth`), undefined for `<stateDir>/credentials`, made on first use.
   */
  credentialsFile?: string | false;
  /** Host names the web server is reached by, besides its listen address and the localhost names. */
  allowedHosts?: string[];
  /** Further origins allowed to call the RPC and open the broker's WebSocket (`http://router.lan:13026`). */
  allowedOrigins?: string[];
}

export interface SpinApp {
  core: SpinCore;
  httpUrl: string;
  /** Host, Origin and login checks of the web server (and the broker's WebSocket origins). */
  guard: HttpGuard;
  rpcSocket?: string;
  mqtt?: MqttBridge;
  close(): Promise<void>;
}

/** Every address of the namespace's interfaces (what spind's reset_iplist_ignore writes). */
export async function ownAddresses(netns?: string): Promise<string[]> {
  const r = await runTool(['ip', '-j', 'addr', 'show'], { netns, allowFail: true });
  if (r.code !== 0) return [];
  const links = JSON.parse(r.stdout) as { addr_info?: { local?: string }[] }[];
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local).filter((a): a is string => !!a));
}

/** The trusted resolvers as canonical addresses (what DNS records are compared with); a name or a typo throws. */
function resolverAddresses(given: string[] | undefined): ReadonlySet<string> | undefined {
  if (!given) return undefined;
  return new Set(
    given.map((a) => {
      const ip = canonicalIp(a);
      if (!ip) throw new Error(`trusted resolver ${JSON.stringify(a)} is not an IP address`);
      return ip;
    }),
  );
}

export async function startSpin(options: SpinOptions): Promise<SpinApp> {
  const log = options.log ?? (() => {});
  // Tables a killed instance left (a capture's NFLOG rule) would go on logging: gone before ours are made. Only
  // those whose owner process is dead, each by the handle it was judged by. Not the block firewall: installing
  // ours replaces it in one transaction, where sweeping it first let blocked traffic through for ~80 ms.
  const swept = await sweepStaleTables(options.netns, [options.tableName ?? 'spin']).catch((err: Error) => {
    log(`sweeping stale firewall tables: ${err.message}`);
    return [];
  });
  if (swept.length) log(`stale firewall tables removed: ${swept.join(', ')}`);
  const monitor = await monitorScope(options.monitorPrefixes, options.monitorInterfaces, options.netns);
  const store = new SpinStore(options.stateDir);
  let rpc!: RpcDispatcher;
  const core = new Core(
    {
      store,
      netns: options.netns,
      periods: options.periods,
      ownAddresses: async () => [...(await ownAddresses(options.netns)), ...(options.ignore ?? [])],
      routerAddresses: () => ownAddresses(options.netns),
      lookupMac: kernelMacLookup(options.netns),
      monitor,
      namesFile: options.namesFile,
      leaseFile: options.leaseFile,
      local: options.local,
      trustedResolvers: resolverAddresses(options.trustedResolvers),
      dots: options.dots,
      tableName: options.tableName,
      log,
    },
    (c) => {
      rpc = spinRpc(c);
      return (req) => rpc.handle(req);
    },
  );
  const rpcText = rpc;
  const tap = options.tap ? core.messages$.subscribe(options.tap) : undefined;
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const close = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        log(`close: ${(err as Error).message}`);
      }
    }
    cleanups.length = 0;
  };
  try {
    cleanups.push(() => store.close());
    cleanups.push(() => tap?.unsubscribe());
    cleanups.push(() => core.close());
    await core.start();

    let rpcSocket: string | undefined;
    if (options.rpcSocket) {
      const server = await listenRpcSocket(options.rpcSocket, (t) => rpcText.handleText(t));
      rpcSocket = options.rpcSocket;
      cleanups.push(() => closeServer(server));
    }

    const credentials =
      options.credentialsFile === false
        ? undefined
        : options.credentialsFile
          ? Credentials.load(options.credentialsFile)
          : defaultCredentials(options.stateDir, log);
    // The web server listens first: its address makes the origins the broker's WebSocket accepts.
    let guard: HttpGuard | undefined;
    let web: WebHandler = () => false;
    const http = createSpinHttp(
      (t) => rpcText.handleText(t),
      (req, res) => web(req, res),
      () => guard,
    );
    const host = options.httpHost ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(options.httpPort ?? 13026, host, () => {
        http.off('error', reject);
        resolve();
      });
    });
    cleanups.push(() => closeServer(http));
    const port = (http.address() as AddressInfo).port;
    const httpUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const httpGuard = new HttpGuard(host, port, {
      hosts: options.allowedHosts,
      origins: options.allowedOrigins,
      credentials,
      sessions: credentials ? new Sessions() : undefined,
    });

    let mqtt: MqttBridge | undefined;
    if (options.mqtt !== false) {
      try {
        mqtt = await startMqtt(core, options.mqtt ?? { broker: 'embedded' }, {
          access: { credentials, originAllowed: (o) => httpGuard.originAllowed(o) },
        });
        cleanups.push(() => mqtt?.close());
      } catch (err) {
        if (options.mqtt) throw err;
        log(`mqtt: ${(err as Error).message}; running without MQTT`);
      }
    }

    const own = createWebHandler({ mqttWsUrl: mqtt?.wsUrl });
    const spinweb = options.webRoot ? createWebRootHandler(options.webRoot) : undefined;
    const capture = createCaptureHandler(core, {
      netns: options.netns,
      tableName: options.tableName,
      fromOwnPage: (req) => httpGuard.fromOwnPage(req),
    });
    web = (req, res) => capture(req, res) || (spinweb?.(req, res) ?? false) || own(req, res);
    guard = httpGuard;

    const daemon = options.daemon;
    const closeFeeds = await reopeningFeeds(async () => (daemon ? await connect(daemon) : new Flowgrab()), core, {
      netns: options.netns,
      dnsGroup: options.dnsGroup,
      pollMs: core.periods.trafficMs,
    });
    cleanups.push(closeFeeds);

    return { core, httpUrl, guard: httpGuard, rpcSocket, mqtt, close };
  } catch (err) {
    await close();
    throw err;
  }
}

function closeServer(s: Server | HttpServer): Promise<void> {
  return new Promise((resolve) => {
    (s as HttpServer).closeAllConnections?.();
    s.close(() => resolve());
  });
}
