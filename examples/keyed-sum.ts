/**
 * Running sum per user.
 *
 *   eddy run examples/keyed-sum.ts -p 2 -- --input <dir> --output <dir> [--rate <events/s>]
 *     [--dead-letter-dir <dir>]   (malformed lines go there instead of failing the job)
 *
 * Reads JSONL events {"user": string, "amount": number} from every file in --input, keeps a
 * running sum per user in keyed value state, and writes {"user", "total"} for every event.
 */
import { parseArgs } from 'node:util';
import {
  type Collector,
  defineJob,
  FileSink,
  FileSource,
  type KeyedContext,
  type KeyedProcessFunction,
  type KeyedRuntimeContext,
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

class RunningSum implements KeyedProcessFunction<string, Event, Total> {
  private sum!: ValueState<number>;

  open(ctx: KeyedRuntimeContext): void {
    this.sum = ctx.getState(new ValueStateDescriptor<number>('sum', { defaultValue: 0 }));
  }

  processElement(event: Event, ctx: KeyedContext<string>, out: Collector<Total>): void {
    const total = (this.sum.value() ?? 0) + event.amount;
    this.sum.update(total);
    out.collect({ user: ctx.currentKey, total });
  }
}

export default defineJob({
  name: 'keyed-sum',
  build(env, args) {
    const { values } = parseArgs({
      args: [...args],
      options: {
        input: { type: 'string' },
        output: { type: 'string' },
        rate: { type: 'string' },
        'dead-letter-dir': { type: 'string' },
      },
    });
    if (!values.input || !values.output) {
      throw new Error('keyed-sum needs -- --input <dir> --output <dir> [--rate <events/s>]');
    }
    const rate = values.rate === undefined ? undefined : Number(values.rate);
    const deadLetterDir = values['dead-letter-dir'];
    const source = FileSource.jsonl<Event>({
      path: values.input,
      ratePerSecond: rate,
      badRecords: deadLetterDir ? { deadLetterDir } : 'fail',
    });
    env
      .fromSource(source, { uid: 'events' })
      .keyBy((e) => e.user)
      .process(new RunningSum(), { uid: 'running-sum', name: 'running-sum' })
      .sinkTo(FileSink.jsonl<Total>({ path: values.output }), { uid: 'totals' });
  },
});
