/**
 * Running total per user, from Redis Streams to a Redis Stream, exactly once.
 *
 *   eddy run examples/redis-pipeline.ts --checkpoint-interval 1000 -- \
 *     --redis <url> --streams <k1,k2,…> --output-stream <key> [--bounded] [--rate <events/s>]
 *
 * Reads entries whose field `data` holds JSON {"user": string, "amount": number} from the
 * input streams, keeps a running total per user in keyed value state, and appends one entry
 * per input entry to the output stream, its field `data` holding JSON {"user", "total"} (the
 * input's format, so another pipeline can read it).
 *
 * Exactly once needs checkpoints (--checkpoint-interval): a checkpoint's entries are appended
 * when it completes, each chunk atomically with the sink's commit marker. `--bounded` reads
 * what the streams hold when the job first starts, then ends; `--rate` limits the total read
 * rate over all input streams.
 */
import { parseArgs } from 'node:util';
import {
  type Collector,
  defineJob,
  type KeyedContext,
  type KeyedProcessFunction,
  type KeyedRuntimeContext,
  RedisStreamSink,
  RedisStreamSource,
  type ValueState,
  ValueStateDescriptor,
} from 'eddy';

interface Event {
  user: string;
  amount: number;
}

interface Total {
  user: string;
  total: number;
}

class RunningTotal implements KeyedProcessFunction<string, Event, Total> {
  private sum!: ValueState<number>;

  open(ctx: KeyedRuntimeContext): void {
    this.sum = ctx.getState(new ValueStateDescriptor<number>('total', { defaultValue: 0 }));
  }

  processElement(event: Event, ctx: KeyedContext<string>, out: Collector<Total>): void {
    const total = (this.sum.value() ?? 0) + event.amount;
    this.sum.update(total);
    out.collect({ user: ctx.currentKey, total });
  }
}

export default defineJob({
  name: 'redis-pipeline',
  build(env, args) {
    const { values } = parseArgs({
      args: [...args],
      options: {
        redis: { type: 'string' },
        streams: { type: 'string' },
        'output-stream': { type: 'string' },
        bounded: { type: 'boolean' },
        rate: { type: 'string' },
      },
    });
    const streams = (values.streams ?? '').split(',').filter((s) => s !== '');
    const output = values['output-stream'];
    if (!values.redis || streams.length === 0 || !output) {
      throw new Error(
        'redis-pipeline needs -- --redis <url> --streams <k1,k2,…> --output-stream <key> [--bounded] [--rate <events/s>]',
      );
    }
    const rate = values.rate === undefined ? undefined : Number(values.rate);
    const source = RedisStreamSource.of<Event>({
      url: values.redis,
      streams,
      bounded: values.bounded ?? false,
      ratePerSecond: rate,
    });
    const sink = RedisStreamSink.of<Total>({
      url: values.redis,
      stream: output,
    });
    env
      .fromSource(source, { uid: 'events' })
      .keyBy((e) => e.user)
      .process(new RunningTotal(), { uid: 'running-total', name: 'running-total' })
      .sinkTo(sink, { uid: 'totals' });
  },
});
