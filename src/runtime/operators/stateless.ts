/** map, filter, flatMap: one user call per record, failures attributed to the record. */
import type { Collector, FilterFunction, FlatMapFunction, MapFunction } from '../functions.js';
import type { OperatorContext, Output, StreamOperator } from '../operator.js';
import { recordTime } from '../record-time.js';
import { userFailure } from './base.js';

abstract class StatelessOperator<IN, OUT> implements StreamOperator<IN, OUT> {
  protected ctx!: OperatorContext;
  protected out!: Output<OUT>;
  protected position = 0;

  open(ctx: OperatorContext, output: Output<OUT>): void {
    this.ctx = ctx;
    this.out = output;
  }

  processWatermark(timestamp: number): void {
    this.out.emitWatermark(timestamp);
  }

  abstract processRecord(record: IN): void;

  protected fail(what: string, e: unknown, record: IN): never {
    throw userFailure(this.ctx.subtask, what, this.position, e, { record });
  }
}

/**
 * map, flatMap and process take `stamp`, their input's timestamp assigner, when the input's
 * timestamps are a function of its records: they set the record's event time in the
 * `recordTime` slot, so the records they emit carry it (see record-time.ts).
 */
export type Stamp<IN> = ((record: IN) => number) | undefined;

export class MapOperator<IN, OUT> extends StatelessOperator<IN, OUT> {
  constructor(
    private readonly fn: MapFunction<IN, OUT>,
    private readonly stamp?: Stamp<IN>,
  ) {
    super();
  }
  processRecord(record: IN): void {
    this.position++;
    let v: OUT;
    try {
      if (this.stamp !== undefined) recordTime.value = this.stamp(record);
      v = this.fn(record);
    } catch (e) {
      this.fail('map', e, record);
    }
    this.out.collect(v);
  }
}

export class FilterOperator<T> extends StatelessOperator<T, T> {
  constructor(private readonly fn: FilterFunction<T>) {
    super();
  }
  processRecord(record: T): void {
    this.position++;
    let keep: boolean;
    try {
      keep = this.fn(record);
    } catch (e) {
      this.fail('filter', e, record);
    }
    if (keep) this.out.collect(record);
  }
}

export class FlatMapOperator<IN, OUT> extends StatelessOperator<IN, OUT> {
  private collector!: Collector<OUT>;
  constructor(
    private readonly fn: FlatMapFunction<IN, OUT>,
    private readonly stamp?: Stamp<IN>,
  ) {
    super();
  }
  override open(ctx: OperatorContext, output: Output<OUT>): void {
    super.open(ctx, output);
    this.collector = output;
  }
  processRecord(record: IN): void {
    this.position++;
    try {
      if (this.stamp !== undefined) recordTime.value = this.stamp(record);
      this.fn(record, this.collector);
    } catch (e) {
      this.fail('flatMap', e, record);
    }
  }
}
