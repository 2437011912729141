/**
 * Receiver side of all channels into one subtask: one FIFO of frames in arrival order.
 * Per-channel order is preserved (each channel is FIFO end to end); across channels there
 * is no order, as in any parallel dataflow.
 */
import type { StreamElement } from '../../core/elements.js';
import type { ChannelSpec } from '../plan.js';

export interface InboundFrame {
  readonly channel: ChannelSpec;
  readonly element: StreamElement;
}

export class InputGate {
  private queue: InboundFrame[] = [];
  private head = 0;
  private wake: (() => void) | undefined;
  private interrupted = false;

  constructor(readonly channels: readonly ChannelSpec[]) {}

  deliver(channel: ChannelSpec, element: StreamElement): void {
    this.queue.push({ channel, element });
    const w = this.wake;
    if (w) {
      this.wake = undefined;
      w();
    }
  }

  /**
   * Wakes a waiting {@link next} without a frame (it resolves undefined): the subtask has
   * mail to run (e.g. processing-time timers). Sticky until the next call to `next`.
   */
  interrupt(): void {
    this.interrupted = true;
    const w = this.wake;
    if (w) {
      this.wake = undefined;
      w();
    }
  }

  /** The next frame, waiting if none has arrived; undefined when {@link interrupt}ed. */
  async next(): Promise<InboundFrame | undefined> {
    while (this.head >= this.queue.length) {
      if (this.interrupted) {
        this.interrupted = false;
        return undefined;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    const frame = this.queue[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return frame;
  }

  /** Frames that arrived but were not processed yet. */
  get pending(): number {
    return this.queue.length - this.head;
  }
}
