/**
 * A feed's records, to each of its subscribers: what an RxJS Subject does
 * for it, without what Subject.next costs per record in the build Node
 * loads (rxjs's ES5 CommonJS): an error-context closure, an iterator object
 * and its results (about 130 bytes, so a scavenge every few thousand events
 * on a young generation V8 has shrunk while the socket was quiet), and two
 * wrapping observers per subscriber.
 *
 * As with a Subject: each next goes to the subscribers of the moment it
 * started (one that leaves meanwhile still gets it, one that joins does
 * not); a subscriber that throws is reported the way RxJS reports it
 * (config.onUnhandledError, else thrown from a timer) and the others still
 * get the record; after complete() or error(), a new subscriber gets that
 * end at once.
 */
import { Observable } from 'rxjs';
import { reportUnhandledError } from 'rxjs/internal/util/reportUnhandledError';

export interface FanoutObserver<T> {
  next(value: T): void;
  error?(err: unknown): void;
  complete?(): void;
}

type End = { kind: 'complete' } | { kind: 'error'; err: unknown };

export class Fanout<T> {
  /** Replaced, never changed in place: a next in progress keeps the array it started with. */
  private observers: FanoutObserver<T>[] = [];
  private ended?: End;

  /** The number of subscribers. */
  get size(): number {
    return this.observers.length;
  }

  subscribe(o: FanoutObserver<T> | ((value: T) => void)): { unsubscribe(): void } {
    const observer: FanoutObserver<T> = typeof o === 'function' ? { next: o } : o;
    if (this.ended) {
      deliverEnd(observer, this.ended);
      return { unsubscribe: () => {} };
    }
    this.observers = [...this.observers, observer];
    return {
      unsubscribe: () => {
        this.observers = this.observers.filter((x) => x !== observer);
      },
    };
  }

  /** An Observable of the records (as Subject.asObservable): each subscription is a subscriber here. */
  asObservable(): Observable<T> {
    return new Observable<T>((subscriber) => this.subscribe(subscriber));
  }

  next(value: T): void {
    const obs = this.observers;
    for (let i = 0; i < obs.length; i++) {
      try {
        obs[i].next(value);
      } catch (err) {
        reportUnhandledError(err);
      }
    }
  }

  error(err: unknown): void {
    this.end({ kind: 'error', err });
  }

  complete(): void {
    this.end({ kind: 'complete' });
  }

  private end(e: End): void {
    if (this.ended) return;
    this.ended = e;
    const obs = this.observers;
    this.observers = [];
    for (const o of obs) deliverEnd(o, e);
  }
}

function deliverEnd<T>(o: FanoutObserver<T>, e: End): void {
  try {
    if (e.kind === 'error') {
      if (o.error) o.error(e.err);
      else reportUnhandledError(e.err);
    } else o.complete?.();
  } catch (err) {
    reportUnhandledError(err);
  }
}
