/**
 * Sender side of one channel: batches records and enforces credit-based flow control.
 * A frame (batch or control element) costs one credit; the receiver returns credit after
 * it has processed the frame. Without credit, frames wait in `queue`, and the subtask
 * awaits `drained()` before producing more: that is the backpressure that keeps a fast
 * source from growing memory without bound.
 */
import type { StreamElement } from '../../core/elements.js';
import type { ChannelSpec } from '../plan.js';

export interface FrameSender {
  send(channel: ChannelSpec, element: StreamElement): void;
}

export class ChannelWriter {
  private buffer: unknown[] = [];
  /** Event times of `buffer`'s records, when the edge carries timestamps. */
  private times: number[] | undefined;
  /** Key groups of `buffer`'s records, on a hash edge (see {@link pushInGroup}). */
  private groups: number[] | undefined;
  private readonly queue: StreamElement[] = [];
  private waiters: Array<() => void> = [];
  /** Records sent on this channel (for metrics). */
  recordsSent = 0;

  constructor(
    readonly spec: ChannelSpec,
    private readonly sender: FrameSender,
    private readonly batchSize: number,
    private credits: number,
    /** Set when the edge carries timestamps: each record's event time, read at push. */
    private readonly timestampOf?: ((record: unknown) => number) | undefined,
  ) {
    if (timestampOf !== undefined) this.times = [];
  }

  push(record: unknown): void {
    const b = this.buffer;
    b.push(record);
    if (this.times !== undefined) this.times.push(this.timestampOf!(record));
    if (b.length >= this.batchSize) this.flush();
  }

  /**
   * A record of a hash edge with the key group its routing computed: the batch carries the
   * key groups, so the keyed operator receiving it does not hash the key again. Hazard: a
   * channel gets either only `push` or only `pushInGroup`, or the key groups would not line
   * up with the records (a hash edge's router only ever calls this one).
   */
  pushInGroup(record: unknown, keyGroup: number): void {
    const b = this.buffer;
    b.push(record);
    if (this.times !== undefined) this.times.push(this.timestampOf!(record));
    if (this.groups === undefined) this.groups = [keyGroup];
    else this.groups.push(keyGroup);
    if (b.length >= this.batchSize) this.flush();
  }

  /** Sends the partial batch, if any. */
  flush(): void {
    if (this.buffer.length === 0) return;
    const records = this.buffer;
    this.buffer = [];
    this.recordsSent += records.length;
    const timestamps = this.times;
    if (timestamps !== undefined) this.times = [];
    const keyGroups = this.groups;
    this.groups = undefined;
    this.emit({ kind: 'records', records, timestamps, keyGroups });
  }

  /** Control elements keep their order relative to records: flush first. */
  emitControl(element: StreamElement): void {
    this.flush();
    this.emit(element);
  }

  addCredit(n: number): void {
    this.credits += n;
    while (this.credits > 0 && this.queue.length > 0) {
      this.credits--;
      this.sender.send(this.spec, this.queue.shift()!);
    }
    if (this.queue.length === 0 && this.waiters.length > 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const resolve of w) resolve();
    }
  }

  get backlogged(): boolean {
    return this.queue.length > 0;
  }

  get hasBufferedRecords(): boolean {
    return this.buffer.length > 0;
  }

  /** Resolves once every queued frame has been sent. */
  drained(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private emit(element: StreamElement): void {
    if (this.credits > 0 && this.queue.length === 0) {
      this.credits--;
      this.sender.send(this.spec, element);
    } else {
      this.queue.push(element);
    }
  }
}
