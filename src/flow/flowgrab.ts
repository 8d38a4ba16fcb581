/**
 * Flowgrab: creates flow handles whose graphs share common prefixes. Flows
 * served by flowgrabd come from `connect(path)` (the daemon layer), with the
 * same API.
 */
import { asyncScheduler, type SchedulerLike } from 'rxjs';
import '../filters/builtin.js';
import type { GraphIssue } from '../filters/errors.js';
import type { Rec } from '../filters/registry.js';
import type { GraphSpec } from '../filters/spec.js';
import { sourcesTornDown } from '../sources/teardown.js';
import { Compiler, type Services } from './compile.js';
import { sharedDnsCache } from './dns-cache.js';
import { type Authorizer, FlowHandle, type FlowOptions } from './handle.js';

/** Options of a Flowgrab: the scheduler windows use, the DNS cache enrich() reads, an authorizer. */
export interface FlowgrabOptions {
  /** Checks every graph at instantiate; issues deny it. Default: allow all (the policy engine plugs in here). */
  authorize?: Authorizer;
  /** Time source of windowed filters (tests pass a TestScheduler). */
  scheduler?: SchedulerLike;
  /** DnsCache provider for enrich() (tests pass their own). */
  dnsCache?: Services['dnsCache'];
}

/** Creates flow handles; flows of one Flowgrab whose graphs begin the same way compute that prefix once. */
export class Flowgrab {
  private readonly compiler: Compiler;
  private readonly authorize: Authorizer;
  // biome-ignore lint/suspicious/noExplicitAny: flows of every record type.
  private readonly open = new Set<FlowHandle<any>>();

  constructor(opts: FlowgrabOptions = {}) {
    this.compiler = new Compiler({
      scheduler: opts.scheduler ?? asyncScheduler,
      dnsCache: opts.dnsCache ?? sharedDnsCache,
    });
    this.authorize = opts.authorize ?? (() => []);
  }

  /** A new flow handle; `R` states its record type for text graphs (a built graph brings its own). */
  create<R extends object = Rec>(opts: FlowOptions = {}): FlowHandle<R> {
    const f: FlowHandle<R> = new FlowHandle<R>(
      this.compiler,
      this.authorize,
      opts,
      (h) => this.open.delete(h),
      (): number => [...this.open].filter((h) => h !== f && h.state !== 'created' && h.state !== 'populated').length,
    );
    this.open.add(f);
    return f;
  }

  /** Validates a graph without running it: every issue, or none. */
  check(g: GraphSpec): GraphIssue[] {
    return this.compiler.check(g).issues;
  }

  get flows(): FlowHandle<Rec>[] {
    return [...this.open];
  }

  /** Stages currently built (shared between flows): for tests and diagnostics. */
  get stageCount(): number {
    return this.compiler.size;
  }

  /**
   * Closes every flow this Flowgrab made. Resolves once the kernel resources they alone held are released,
   * the nft tables and rules of DNS and NFQUEUE sources included, so a process may exit right after.
   */
  async close(): Promise<void> {
    await Promise.all([...this.open].map((f) => f.close()));
    await sourcesTornDown();
  }
}
