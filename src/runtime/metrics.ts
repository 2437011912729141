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

/** A run's record counts: read by sources, written by sinks, dead letters. */
export interface Totals {
  /** Records emitted by the sources. */
  readonly recordsIn: number;
  /** Records taken in by the sinks. */
  readonly recordsOut: number;
  readonly deadLetters: number;
}

export const ZERO_TOTALS: Totals = { recordsIn: 0, recordsOut: 0, deadLetters: 0 };

export const totals = (reports: readonly SubtaskMetricsReport[]): Totals => {
  let recordsIn = 0;
  let recordsOut = 0;
  let deadLetters = 0;
  for (const r of reports) {
    if (r.kind === 'source') recordsIn += r.values.recordsOut ?? 0;
    if (r.kind === 'sink') recordsOut += r.values.recordsIn ?? 0;
    deadLetters += r.values.deadLetters ?? 0;
  }
  return { recordsIn, recordsOut, deadLetters };
};

export const addTotals = (a: Totals, b: Totals): Totals => ({
  recordsIn: a.recordsIn + b.recordsIn,
  recordsOut: a.recordsOut + b.recordsOut,
  deadLetters: a.deadLetters + b.deadLetters,
});
