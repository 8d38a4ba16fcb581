/**
 * NFQUEUE sharing, after ipqmpd: the daemon owns one queue; each client
 * registers a mark (or mark/mask) and receives only the packets whose mark
 * matches; two registrations that could both match one mark are refused.
 * A verdict is taken only for a packet delivered to that client. Unclaimed
 * packets, packets a client cannot take (its backlog is full, or outside its
 * scope), and the pending packets of a client that goes away or misses its
 * timeout get the default verdict.
 */
import type { Subscription } from 'rxjs';
import { markRefusal } from '../auth/marks.js';
import type { Principal } from '../auth/policy.js';
import { FlowgrabError } from '../errors.js';
import type { NfqueueRules } from '../sources/nfqueue/options.js';
import type { QueuedPacket, VerdictOptions } from '../sources/nfqueue/queued.js';
import { type NfqueueSource, nfqueue } from '../sources/nfqueue/source.js';
import { sourcesTornDown } from '../sources/teardown.js';
import { AgedMap } from '../util/aged-map.js';
import {
  formatMark,
  marksOverlap,
  packetFrame,
  type QueueClient,
  type Registration,
  redactPacket,
  registrationStatus,
  scopeTest,
  type Verdict,
  verdictProblem,
} from './registration.js';

export type { QueueClient, Verdict } from './registration.js';

export interface QueueStats {
  queue: number;
  received: number;
  unclaimed: number;
  delivered: number;
  verdicts: number;
  refusedVerdicts: number;
  timedOut: number;
  /** Packets decided for clients that went away or could not take them. */
  defaulted: number;
}

export interface QueueConfig {
  queue: number;
  netns?: string;
  /** iptables jump rules the daemon installs while it runs; without, the admin's own rules queue. */
  rules?: NfqueueRules;
  /** For unclaimed packets and those a client did not decide in time. Default accept. */
  defaultVerdict?: 'accept' | 'drop';
  /** How long a client has for a verdict (ms). Default 2000. */
  verdictTimeoutMs?: number;
  copyRange?: number;
  maxLen?: number;
}

export class QueueMux {
  readonly stats: QueueStats;
  private readonly regs = new Map<number, Registration>();
  /** Which registration each pending packet id belongs to. */
  private readonly owner = new Map<number, Registration>();
  private nextReg = 1;
  private source?: NfqueueSource;
  private sub?: Subscription;
  private sweep?: NodeJS.Timeout;
  private flushScheduled = false;
  private readonly defaultVerdict: 'accept' | 'drop';
  private readonly timeoutMs: number;

  constructor(
    readonly cfg: QueueConfig,
    private readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void,
  ) {
    this.defaultVerdict = cfg.defaultVerdict ?? 'accept';
    this.timeoutMs = cfg.verdictTimeoutMs ?? 2000;
    this.stats = {
      queue: cfg.queue,
      received: 0,
      unclaimed: 0,
      delivered: 0,
      verdicts: 0,
      refusedVerdicts: 0,
      timedOut: 0,
      defaulted: 0,
    };
  }

  /** Binds the queue (and installs the rules); from then on every queued packet is decided by someone. */
  async start(): Promise<void> {
    const source = nfqueue({
      queue: this.cfg.queue,
      netns: this.cfg.netns,
      rules: this.cfg.rules,
      copyRange: this.cfg.copyRange,
      maxLen: this.cfg.maxLen,
      defaultVerdict: this.defaultVerdict,
      // A backstop only: the multiplexer decides first, on each client's own timeout.
      verdictTimeoutMs: this.timeoutMs + 2000,
      notices: { next: (n) => this.log('warn', 'nfqueue', { queue: this.cfg.queue, notice: n.message }) },
    });
    this.source = source;
    this.sub = source.subscribe({
      next: (p) => this.onPacket(p),
      error: (err) => this.log('error', 'nfqueue failed', { queue: this.cfg.queue, error: (err as Error).message }),
    });
    await source.ready();
    this.log('info', 'nfqueue bound', { queue: this.cfg.queue, netns: this.cfg.netns, default: this.defaultVerdict });
  }

  /** Registers `client` for packets whose mark matches; refuses without verdict rights or a mark already taken. */
  register(
    client: QueueClient,
    principal: Principal,
    req: { mark: number; mask?: number; timeoutMs?: number },
  ): { reg: number; queue: number; mark: string; timeoutMs: number } {
    if (client.closed) throw new FlowgrabError('FG_ERR_CLOSED', 'the client has gone', { op: 'queue' });
    if (!principal.verdicts)
      throw new FlowgrabError('FG_ERR_DENIED', 'your policy does not allow NFQUEUE verdicts', { op: 'queue' });
    if (!this.source)
      throw new FlowgrabError(
        'FG_ERR_INVALID_STATE',
        'this flowgrabd shares no NFQUEUE queue (start it with --queue)',
        {
          op: 'queue',
        },
      );
    const mask = (req.mask ?? 0xffffffff) >>> 0;
    const mark = (req.mark & mask) >>> 0;
    // The principal's own ranges first: a claim outside them must not learn what others hold (a 0/0 claim
    // overlapping everything was told each other client's exact mark).
    const refusal = markRefusal(principal, { mark, mask }, client.uid);
    if (refusal) throw new FlowgrabError('FG_ERR_DENIED', refusal, { op: 'queue' });
    for (const r of this.regs.values())
      if (marksOverlap(r, { mark, mask }))
        throw new FlowgrabError(
          'FG_ERR_BUSY',
          r.client === client
            ? `mark ${formatMark(mark, mask)} is already taken: it overlaps your registration ${formatMark(r.mark, r.mask)}`
            : `mark ${formatMark(mark, mask)} is already taken by another client`,
          { op: 'queue' },
        );
    const timeoutMs = Math.min(req.timeoutMs ?? this.timeoutMs, this.timeoutMs);
    const reg: Registration = {
      id: this.nextReg++,
      client,
      mark,
      mask,
      timeoutMs,
      pending: new AgedMap(),
      inScope: scopeTest(principal.scope),
      redact: principal.redact ?? [],
      delivered: 0,
      verdicts: 0,
      timedOut: 0,
      refused: 0,
      undeliverable: 0,
      batch: [],
    };
    this.regs.set(reg.id, reg);
    this.log('info', 'queue mark registered', {
      client: client.cid,
      uid: client.uid,
      reg: reg.id,
      mark: formatMark(mark, mask),
    });
    return { reg: reg.id, queue: this.cfg.queue, mark: formatMark(mark, mask), timeoutMs };
  }

  /** Ends a registration; its pending packets get the default verdict now. */
  unregister(client: QueueClient, regId: number, why: string): boolean {
    const reg = this.regs.get(regId);
    if (!reg || reg.client !== client) return false;
    this.regs.delete(regId);
    reg.batch = []; // not sent yet, but pending: decided below with the rest
    const n = this.decideAll(reg);
    this.log('info', 'queue mark released', {
      client: client.cid,
      uid: client.uid,
      reg: regId,
      why,
      defaulted: n || undefined,
    });
    return true;
  }

  /** Everything `client` held: a client that disconnects or dies. */
  release(client: QueueClient, why: string): void {
    for (const r of [...this.regs.values()]) if (r.client === client) this.unregister(client, r.id, why);
  }

  /** Registrations held by clients of `uid`. */
  registrationsOf(uid: number): number {
    let n = 0;
    for (const r of this.regs.values()) if (r.client.uid === uid) n++;
    return n;
  }

  /** True when `client` holds a registration. */
  holds(client: QueueClient): boolean {
    for (const r of this.regs.values()) if (r.client === client) return true;
    return false;
  }

  /** The client's verdicts; each names a packet delivered to it and not yet decided, or is refused. */
  verdict(
    client: QueueClient,
    regId: number,
    verdicts: { packetId: number; verdict: Verdict; mark?: number }[],
  ): { accepted: number; refused: { packetId: number; reason: string }[] } {
    const reg = this.regs.get(regId);
    if (!reg || reg.client !== client)
      throw new FlowgrabError('FG_ERR_INVALID_ARGUMENT', `no queue registration ${regId} on this connection`, {
        op: 'verdict',
      });
    let accepted = 0;
    const refused: { packetId: number; reason: string }[] = [];
    for (const v of verdicts) {
      const reason = verdictProblem(reg, v, this.owner.has(v.packetId));
      if (reason) {
        refused.push({ packetId: v.packetId, reason });
        continue;
      }
      reg.pending.delete(v.packetId);
      this.owner.delete(v.packetId);
      const opts: VerdictOptions | undefined = v.mark === undefined ? undefined : { mark: v.mark };
      try {
        this.source?.verdict(v.packetId, v.verdict, opts);
        accepted++;
        reg.verdicts++;
        this.stats.verdicts++;
      } catch (err) {
        refused.push({ packetId: v.packetId, reason: (err as Error).message });
      }
    }
    if (refused.length) {
      reg.refused += refused.length;
      this.stats.refusedVerdicts += refused.length;
      this.log('warn', 'verdict refused', {
        client: client.cid,
        uid: client.uid,
        reg: regId,
        refused: refused.length,
        first: `${refused[0].packetId}: ${refused[0].reason}`,
      });
    }
    return { accepted, refused };
  }

  status(uid?: number): Record<string, unknown> {
    return {
      ...this.stats,
      defaultVerdict: this.defaultVerdict,
      registrations: [...this.regs.values()]
        .filter((r) => uid === undefined || uid === 0 || r.client.uid === uid)
        .map(registrationStatus),
    };
  }

  /** Registrations a policy no longer allows (verdict right revoked): closed, the client told why. */
  recheck(client: QueueClient, principal: Principal | undefined): void {
    if (principal?.verdicts) return;
    for (const r of [...this.regs.values()])
      if (r.client === client) {
        client.notice(r.id, { kind: 'closed', message: 'the new policy does not allow NFQUEUE verdicts' });
        this.unregister(client, r.id, 'policy reload');
      }
  }

  async close(): Promise<void> {
    clearTimeout(this.sweep);
    this.sweep = undefined;
    for (const r of [...this.regs.values()]) this.unregister(r.client, r.id, 'daemon stopping');
    // The last subscriber leaving decides what is still queued, removes the rules and unbinds.
    this.sub?.unsubscribe();
    this.sub = undefined;
    this.source = undefined;
    await sourcesTornDown();
  }

  private onPacket(p: QueuedPacket): void {
    this.stats.received++;
    const reg = this.route(p.mark >>> 0);
    if (!reg) {
      this.stats.unclaimed++;
      this.decide(p.packetId);
      return;
    }
    if (reg.inScope && !reg.inScope(p)) {
      // Outside what this principal may see: decided here, never shown.
      reg.undeliverable++;
      this.stats.defaulted++;
      this.decide(p.packetId);
      return;
    }
    reg.pending.set(p.packetId, performance.now() + reg.timeoutMs); // monotonic: the sweep stops at the first to come
    this.owner.set(p.packetId, reg);
    this.armSweep();
    reg.batch.push(redactPacket(packetFrame(p), reg.redact));
    if (reg.batch.length >= 64) this.flushBatch(reg);
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        for (const r of this.regs.values()) this.flushBatch(r);
      });
    }
  }

  private route(mark: number): Registration | undefined {
    for (const r of this.regs.values()) if ((mark & r.mask) >>> 0 === r.mark) return r;
    return undefined;
  }

  private flushBatch(reg: Registration): void {
    if (reg.batch.length === 0) return;
    const batch = reg.batch;
    reg.batch = [];
    if (this.regs.get(reg.id) === reg && reg.client.deliver(reg.id, batch)) {
      reg.delivered += batch.length;
      this.stats.delivered += batch.length;
      return;
    }
    // The client cannot take them (it is not reading): decided now, counted, and the client is told.
    for (const p of batch) {
      const id = p.packetId as number;
      reg.pending.delete(id);
      this.owner.delete(id);
      this.decide(id);
    }
    reg.undeliverable += batch.length;
    this.stats.defaulted += batch.length;
    reg.client.notice(reg.id, {
      kind: 'loss',
      count: batch.length,
      message: `${batch.length} packets got the default verdict (${this.defaultVerdict}): you were not reading`,
    });
  }

  /**
   * Expires verdicts every few ms (a quarter of the timeout, 10-100 ms) while packets wait for clients' verdicts;
   * with none waiting, no timer runs.
   */
  private armSweep(): void {
    if (this.sweep || !this.source) return;
    const every = Math.max(10, Math.min(100, this.timeoutMs / 4));
    this.sweep = setTimeout(() => {
      this.sweep = undefined;
      this.expire(performance.now());
      for (const r of this.regs.values()) if (r.pending.size > 0) return this.armSweep();
    }, every);
    this.sweep.unref();
  }

  private expire(now: number): void {
    for (const reg of this.regs.values()) {
      let n = 0;
      // Deadlines come in the order packets did (one timeout per registration): the sweep stops at the first to
      // come, instead of walking every pending packet 20 times before its deadline.
      for (const [id, deadline] of reg.pending) {
        if (deadline > now) break;
        reg.pending.delete(id);
        this.owner.delete(id);
        this.decide(id);
        n++;
      }
      if (n) {
        reg.timedOut += n;
        this.stats.timedOut += n;
        reg.client.notice(reg.id, {
          kind: 'timeout',
          count: n,
          message: `${n} packets got the default verdict (${this.defaultVerdict}) after ${reg.timeoutMs} ms without yours`,
        });
      }
    }
  }

  private decideAll(reg: Registration): number {
    const n = reg.pending.size;
    for (const id of reg.pending.keys()) {
      this.owner.delete(id);
      this.decide(id);
    }
    reg.pending.clear();
    this.stats.defaulted += n;
    return n;
  }

  private decide(packetId: number): void {
    try {
      this.source?.verdict(packetId, this.defaultVerdict);
    } catch {
      // Already decided by the source's own backstop timeout.
    }
  }
}
