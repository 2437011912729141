/** Per-subtask counters, cheap to bump on the hot path and plain data to report. */
import type { Counter, MetricGroup } from './io.js';

class SimpleCounter implements Counter {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

export class SubtaskMetrics implements MetricGroup {
  recordsIn = 0;
  recordsOut = 0;
  private readonly counters = new Map<string, SimpleCounter>();

  counter(name: string): Counter {
    let c = this.counters.get(name);
    if (!c) {
      c = new SimpleCounter();
      this.counters.set(name, c);
    }
    return c;
  }

  snapshot(): Record<string, number> {
    const out: Record<string, number> = { recordsIn: this.recordsIn, recordsOut: this.recordsOut };
    for (const [k, c] of this.counters) out[k] = c.value;
    return out;
  }
}

/** One subtask's metrics (`RunOptions.onMetrics`). */
export interface SubtaskMetricsReport {
  readonly nodeId: number;
  readonly operatorName: string;
  readonly kind: 'source' | 'operator' | 'sink';
  readonly subtaskIndex: number;
  /** The worker thread (index) running the subtask; absent in reports of older callers. */
  readonly worker?: number | undefined;
  /**
   * `recordsIn`, `recordsOut`, the connector's own counters, `backpressuredMs` (wall time
   * spent waiting for output credit, cumulative) and `watermark` (event time reached, epoch
   * ms; absent without event time).
   */
  readonly values: Record<string, number>;
}
