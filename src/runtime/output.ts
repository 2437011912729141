/**
 * Outputs of a chain's operators: the next chained operator, or the network edges at the
 * chain's tail, partitioned forward / rebalance / broadcast / by key group.
 */
import { attributeTo, previewRecord, type SubtaskRef, UserFunctionError } from '../core/errors.js';
import {
  type Key,
  keyGroupForHash,
  keyHashCode,
  operatorIndexForKeyGroupUnchecked,
  validateParallelism,
} from '../keygroups/index.js';
import type { Partitioning } from './graph.js';
import type { Output, StreamOperator } from './operator.js';
import type { ChannelWriter } from './transport/channel-writer.js';

/**
 * Calls the next operator of the chain directly. What that call throws is attributed to the
 * next operator (`nextRef`) unless already attributed further down the chain, so an error in
 * an operator chained after a user function never reads as that function's failure. One
 * try/catch, nothing allocated unless something throws.
 */
export class ChainedOutput<T> implements Output<T> {
  constructor(
    private readonly next: StreamOperator<T, unknown>,
    private readonly metrics: { recordsIn: number },
    private readonly nextRef: SubtaskRef,
    /** The emitting operator's counters (a source counts its own output: a spare object). */
    private readonly from: { recordsOut: number } = { recordsOut: 0 },
  ) {}
  collect(record: T): void {
    this.metrics.recordsIn++;
    this.from.recordsOut++;
    try {
      this.next.processRecord(record);
    } catch (e) {
      throw attributeTo(this.nextRef, e);
    }
  }
  emitWatermark(timestamp: number): void {
    try {
      this.next.processWatermark?.(timestamp);
    } catch (e) {
      throw attributeTo(this.nextRef, e);
    }
  }
  // An operator with side outputs is never chained to its successor (plan.ts), so a chained
  // output has no side outputs to feed.
  collectSide(): void {}
}

/** Counts an operator's records out at the chain's tail (side outputs not included). */
export class CountingOutput implements Output<unknown> {
  constructor(
    private readonly inner: Output<unknown>,
    private readonly metrics: { recordsOut: number },
  ) {}
  collect(record: unknown): void {
    this.metrics.recordsOut++;
    this.inner.collect(record);
  }
  emitWatermark(timestamp: number): void {
    this.inner.emitWatermark(timestamp);
  }
  collectSide(tagId: string, record: unknown): void {
    this.inner.collectSide(tagId, record);
  }
}

/** A sink has no output; emitting from it is a bug in the operator. */
export const NO_OUTPUT: Output<unknown> = {
  collect() {},
  emitWatermark() {},
  collectSide() {},
};

/** One network edge: picks the channel(s) of each record. */
export class EdgeOutput implements Output<unknown> {
  private next = 0;
  private readonly route: (record: unknown) => void;

  constructor(
    readonly writers: readonly ChannelWriter[],
    partitioning: Partitioning,
    targetMaxParallelism: number,
    private readonly sender: SubtaskRef,
  ) {
    this.next = sender.subtaskIndex % writers.length;
    this.route = this.router(partitioning, targetMaxParallelism);
  }

  collect(record: unknown): void {
    this.route(record);
  }

  emitWatermark(timestamp: number): void {
    for (const w of this.writers) w.emitControl({ kind: 'watermark', timestamp });
  }

  collectSide(): void {}

  private router(p: Partitioning, maxParallelism: number): (record: unknown) => void {
    const ws = this.writers;
    switch (p.kind) {
      case 'forward':
        return (r) => ws[0]!.push(r);
      case 'broadcast':
        return (r) => {
          for (const w of ws) w.push(r);
        };
      case 'rebalance':
        return (r) => {
          ws[this.next]!.push(r);
          this.next = this.next + 1 === ws.length ? 0 : this.next + 1;
        };
      case 'hash': {
        const parallelism = ws.length;
        // Checked once here, so the per-record path can use the unchecked functions.
        validateParallelism(parallelism, maxParallelism);
        const select = p.keySelector;
        let position = 0;
        return (r) => {
          position++;
          let key: Key;
          try {
            key = select(r);
            const kg = keyGroupForHash(keyHashCode(key), maxParallelism);
            // The key group travels with the record: the keyed operator does not hash again.
            ws[operatorIndexForKeyGroupUnchecked(maxParallelism, parallelism, kg)]!.pushInGroup(
              r,
              kg,
            );
          } catch (e) {
            throw new UserFunctionError(
              this.sender,
              'the keyBy key selector',
              position,
              e,
              previewRecord(r),
            );
          }
        };
      }
    }
  }
}

/** Fans a record out to several network edges. */
export class FanOutOutput implements Output<unknown> {
  constructor(private readonly outputs: readonly Output<unknown>[]) {}
  collect(record: unknown): void {
    for (const o of this.outputs) o.collect(record);
  }
  emitWatermark(timestamp: number): void {
    for (const o of this.outputs) o.emitWatermark(timestamp);
  }
  collectSide(): void {}
}

/**
 * A chain tail's output with side outputs: main records to `main`, side records by tag to
 * the edges reading that side output (dropped if none does); watermarks to all of them.
 */
export class RoutedOutput implements Output<unknown> {
  constructor(
    private readonly main: Output<unknown>,
    private readonly sides: ReadonlyMap<string, Output<unknown>>,
  ) {}
  collect(record: unknown): void {
    this.main.collect(record);
  }
  emitWatermark(timestamp: number): void {
    this.main.emitWatermark(timestamp);
    for (const o of this.sides.values()) o.emitWatermark(timestamp);
  }
  collectSide(tagId: string, record: unknown): void {
    this.sides.get(tagId)?.collect(record);
  }
}
