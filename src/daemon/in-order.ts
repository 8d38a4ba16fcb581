/**
 * Jobs run one at a time, in the order pushed; `after` runs once each job is done, or dropped. close() drops
 * every job not started yet (the one running finishes). A job that throws does not stop the ones after it.
 */
export class InOrder {
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  push(job: () => Promise<void>, after: () => void): void {
    this.tail = this.tail
      .then(() => (this.closed ? undefined : job()))
      .catch(() => {})
      .finally(after);
  }

  close(): void {
    this.closed = true;
  }
}
