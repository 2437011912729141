/**
 * What every Nexmark query job shares (docs/NEXMARK-QUERIES.md has the contract):
 *
 *   eddy run examples/nexmark/q<N>.ts -- --input <dir> --output <dir> [--rate <events/s>]
 *   eddy run examples/nexmark/q<N>.ts -- --events <n> --output <dir> [--rate <events/s>]
 *     [--events-per-second <n>]
 *
 * `--input` reads the JSON Lines of `eddy nexmark generate` (every file in the directory);
 * `--events` generates events 0..n-1 with the Nexmark source (the same events). Event time is
 * `dateTime`; the watermark trails the largest `dateTime` seen by 4 s, per file (per subtask
 * for the generator). `--rate` limits the events per second in total (for tests that must
 * catch the job running); `--events-per-second` is the generator's event-time rate (default
 * 10,000, as `eddy nexmark generate --events-per-second`). Results are JSON Lines with the field names of the Nexmark SQL
 * queries, written by a file sink into `--output` (or dropped with `--blackhole`, for the
 * benchmark).
 */
import { parseArgs } from 'node:util';
import {
  type Auction,
  type Bid,
  type Collector,
  type DataStream,
  FileSink,
  FileSource,
  type KeyedProcessFunction,
  type KeyedRuntimeContext,
  type NexmarkEvent,
  NexmarkSource,
  type Person,
  type Sink,
  type Source,
  type StreamExecutionEnvironment,
  type ValueState,
  ValueStateDescriptor,
} from 'eddy';

/** The three typed streams of one Nexmark input, and the query's sink. */
export interface NexmarkJob {
  readonly persons: DataStream<Person>;
  readonly auctions: DataStream<Auction>;
  readonly bids: DataStream<Bid>;
  /** Writes `results` as JSON Lines into `--output` (or drops them with `--blackhole`). */
  sink<T>(results: DataStream<T>): void;
}

const positive = (query: string, flag: string, value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new Error(`${query}: --${flag} must be a positive number, got '${value}'`);
  }
  return n;
};

/** Parses the job's arguments and builds its input streams and sink. */
export const nexmarkJob = (
  query: string,
  env: StreamExecutionEnvironment,
  args: readonly string[],
): NexmarkJob => {
  const { values } = parseArgs({
    args: [...args],
    options: {
      input: { type: 'string' },
      events: { type: 'string' },
      output: { type: 'string' },
      rate: { type: 'string' },
      'events-per-second': { type: 'string' },
      blackhole: { type: 'boolean' },
    },
  });
  const usage = `${query} needs -- (--input <dir> | --events <n>) (--output <dir> | --blackhole) [--rate <events/s>]`;
  const outputs = (values.output === undefined ? 0 : 1) + (values.blackhole ? 1 : 0);
  if (outputs !== 1 || (values.input === undefined) === (values.events === undefined)) {
    throw new Error(usage);
  }
  const rate = values.rate === undefined ? undefined : positive(query, 'rate', values.rate);
  let source: Source<NexmarkEvent>;
  if (values.input !== undefined) {
    source = FileSource.jsonl<NexmarkEvent>({
      path: values.input,
      ...(rate === undefined ? {} : { ratePerSecond: rate }),
    });
  } else {
    const events = positive(query, 'events', values.events!);
    if (!Number.isSafeInteger(events)) throw new Error(`${query}: --events must be an integer`);
    const perSecond = values['events-per-second'];
    source = NexmarkSource.of({
      events,
      ...(rate === undefined ? {} : { ratePerSecond: rate }),
      ...(perSecond === undefined
        ? {}
        : { config: { eventsPerSecond: positive(query, 'events-per-second', perSecond) } }),
    });
  }
  const events = env.fromSource(source, {
    uid: 'nexmark-events',
    name: 'nexmark-events',
    watermarks: NexmarkSource.watermarks(),
  });
  const output = values.output;
  // Each typed stream is made when a query first reads it: a filter nobody reads would still
  // run over every event (and keep the source from chaining with the one filter a query uses).
  let persons: DataStream<Person> | undefined;
  let auctions: DataStream<Auction> | undefined;
  let bids: DataStream<Bid> | undefined;
  return {
    get persons() {
      persons ??= events.filter((e): e is Person => e.type === 'person', { name: 'persons' });
      return persons;
    },
    get auctions() {
      auctions ??= events.filter((e): e is Auction => e.type === 'auction', { name: 'auctions' });
      return auctions;
    },
    get bids() {
      bids ??= events.filter((e): e is Bid => e.type === 'bid', { name: 'bids' });
      return bids;
    },
    sink: (results) =>
      results.sinkTo(output === undefined ? blackhole() : FileSink.jsonl({ path: output }), {
        uid: `${query}-out`,
        name: 'out',
      }),
  };
};

/**
 * A sink that drops its records (Flink Nexmark's `blackhole`): for benchmarks, so that
 * writing results does not dominate the pass-through queries.
 */
export const blackhole = <T>(): Sink<T> => ({
  defaultName: 'blackhole',
  createWriter: () => ({
    open: async () => {},
    write: () => {},
    flush: () => {},
    finish: async () => {},
    abort: async () => {},
  }),
});

interface Best<T> {
  readonly score: number;
  readonly items: readonly T[];
}

/**
 * The second stage of a parallel "the window's maximum": partial results of one window
 * (computed per key in parallel, each with the window's start) keyed by the window start;
 * keeps those with the highest score and emits them when the watermark passes the window's
 * end. Every partial result of a window arrives before that watermark: the window operator
 * upstream emits a window's results before forwarding the watermark that fired it, and this
 * operator's watermark is the minimum over its inputs.
 *
 * The state handle lives in the returned object: pass a factory (`() => maxPerWindow(...)`)
 * so that every subtask gets its own.
 */
export const maxPerWindow = <T, O>(
  sizeMs: number,
  startOf: (t: T) => number,
  scoreOf: (t: T) => number,
  emit: (t: T, out: Collector<O>) => void,
): KeyedProcessFunction<number, T, O> => {
  let best: ValueState<Best<T>>;
  return {
    open(ctx: KeyedRuntimeContext) {
      best = ctx.getState(new ValueStateDescriptor<Best<T>>('best'));
    },
    processElement(t, ctx) {
      const current = best.value();
      const score = scoreOf(t);
      if (current === undefined) {
        ctx.timerService.registerEventTimeTimer(startOf(t) + sizeMs - 1);
        best.update({ score, items: [t] });
      } else if (score > current.score) {
        best.update({ score, items: [t] });
      } else if (score === current.score) {
        best.update({ score, items: [...current.items, t] });
      }
    },
    onTimer(_timestamp, _ctx, out) {
      for (const t of best.value()?.items ?? []) emit(t, out);
      best.clear();
    },
  };
};

/** A count as an aggregate function (window contents hold one number per key and window). */
export const countAll = {
  createAccumulator: () => 0,
  add: (_v: unknown, n: number) => n + 1,
  merge: (a: number, b: number) => a + b,
  getResult: (n: number) => n,
};
