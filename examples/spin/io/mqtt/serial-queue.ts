// Hands publishes to a broker one at a time, in order, from a bounded FIFO.
// One at a time because aedes stores a retained message asynchronously
// before routing it, so two publishes in flight may overtake each other —
// and SPIN promises a node's nodeInfo before any message naming it; and
// because mqtt.js calls back only once the socket has drained, which is the
// backpressure a burst (every node's nodeInfo at connect) needs. The loop
// (not recursion) matters too: aedes' emitter drains its own backlog
// recursively and overflows the stack when thousands of publishes wait.

export interface QueueLimits {
  readonly maxMessages: number;
  readonly maxBytes: number;
}

export interface QueuedPublish {
  readonly topic: string;
  readonly payload: string;
  readonly retain: boolean;
}

export class SerialQueue {
  private items: (QueuedPublish | undefined)[] = [];
  private head = 0;
  private bytes = 0;
  private busy = false;
  private pumping = false;
  private stopped = false;
  private generation = 0;
  /** Publishes taken but not sent: the broker reported an error, or the queue was cleared. */
  lost = 0;

  constructor(
    private readonly limits: QueueLimits,
    private readonly send: (item: QueuedPublish, done: (error?: Error | null) => void) => void,
  ) {}

  get length(): number {
    return this.items.length - this.head;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  /** Queues one publish; false when the queue is full (or stopped) and it was not taken. */
  push(item: QueuedPublish): boolean {
    const size = Buffer.byteLength(item.payload) + item.topic.length;
    if (this.stopped || this.length >= this.limits.maxMessages || this.bytes + size > this.limits.maxBytes)
      return false;
    this.items.push(item);
    this.bytes += size;
    this.pump();
    return true;
  }

  /**
   * Drops everything waiting (the connection is gone), counted as lost. The
   * publish in flight is given up too: its callback may never come (mqtt.js
   * waits for a 'drain' that a closed socket never emits).
   */
  clear(): void {
    this.lost += this.length + (this.busy ? 1 : 0);
    this.generation++;
    this.busy = false;
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }

  stop(): void {
    this.stopped = true;
    this.clear();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.busy && !this.stopped && this.length > 0) {
        const item = this.take();
        this.busy = true;
        const generation = this.generation;
        // A synchronous done() lets the loop go on; a later one restarts it on a fresh stack.
        this.send(item, (error) => {
          if (generation !== this.generation) return;
          if (error) this.lost++;
          this.busy = false;
          this.pump();
        });
      }
    } finally {
      this.pumping = false;
    }
  }

  private take(): QueuedPublish {
    const item = this.items[this.head] as QueuedPublish;
    this.items[this.head++] = undefined;
    this.bytes -= Buffer.byteLength(item.payload) + item.topic.length;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}
