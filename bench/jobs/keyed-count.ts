/**
 * The state-backends benchmark's job: a count per key over `--keys` distinct keys, each seen
 * `--events-per-key` times, from a generator (no input files, so 100M keys need no 4 GB of
 * JSONL). Key `u<k>` for event `i` is `k = (i mod K) × A mod K`, a permutation of the keys for
 * each pass over them (A is odd and not a multiple of 5, so coprime to any K = 10^n, and the
 * product stays below 2^53 for K up to 1.3 × 10^8), so consecutive events touch keys far apart.
 *
 *   eddy run bench/jobs/keyed-count.ts -p 2 -- --keys <K> --events-per-key <E> --output <dir>
 *     [--sample <S>]
 *
 * Output: for every key `k` with `k mod S = 0` (default S = 1000), one line `{"key", "count"}`
 * when its count reaches E: the bench checks there are exactly ⌈K/S⌉ lines, each with count E,
 * so lost or doubled state shows without writing K lines.
 */
import { parseArgs } from 'node:util';
import {
  type Collector,
  defineJob,
  FileSink,
  GeneratorSource,
  type KeyedContext,
  type KeyedProcessFunction,
  type KeyedRuntimeContext,
  type ValueState,
  ValueStateDescriptor,
} from 'eddy';

const A = 2_654_435_761;

interface Counted {
  key: string;
  count: number;
}

class Count implements KeyedProcessFunction<string, number, Counted> {
  private count!: ValueState<number>;

  constructor(
    private readonly perKey: number,
    private readonly sample: number,
  ) {}

  open(ctx: KeyedRuntimeContext): void {
    this.count = ctx.getState(new ValueStateDescriptor<number>('count', { defaultValue: 0 }));
  }

  processElement(k: number, ctx: KeyedContext<string>, out: Collector<Counted>): void {
    const count = (this.count.value() ?? 0) + 1;
    this.count.update(count);
    if (count === this.perKey && k % this.sample === 0) out.collect({ key: ctx.currentKey, count });
  }
}

const positive = (name: string, value: string | undefined, fallback?: number): number => {
  const n = value === undefined ? fallback : Number(value);
  if (n === undefined || !Number.isSafeInteger(n) || n < 1) {
    throw new Error(`keyed-count: --${name} must be a positive integer, got ${value}`);
  }
  return n;
};

export default defineJob({
  name: 'keyed-count',
  build(env, args) {
    const { values } = parseArgs({
      args: [...args],
      options: {
        keys: { type: 'string' },
        'events-per-key': { type: 'string' },
        output: { type: 'string' },
        sample: { type: 'string' },
      },
    });
    if (!values.output) {
      throw new Error('keyed-count needs -- --keys <K> --events-per-key <E> --output <dir>');
    }
    const keys = positive('keys', values.keys);
    if (keys > 130_000_000) throw new Error('keyed-count: --keys must be at most 130,000,000');
    const perKey = positive('events-per-key', values['events-per-key'], 1);
    const sample = positive('sample', values.sample, 1000);
    const a = A % keys;
    env
      .fromSource(
        GeneratorSource.of({ count: keys * perKey, generate: (i) => ((i % keys) * a) % keys }),
        { uid: 'events' },
      )
      .keyBy((k) => `u${k}`)
      .process(new Count(perKey, sample), { uid: 'count', name: 'count' })
      .sinkTo(FileSink.jsonl<Counted>({ path: values.output }), { uid: 'sampled' });
  },
});
