/**
 * The N most frequent items per sliding event-time window.
 *
 *   eddy run examples/top-items.ts -p 2 -- --input <dir> --output <dir> --size-ms <ms>
 *     --slide-ms <ms> [--top <n>] [--rate <events/s>]
 *
 * Reads JSONL events {"item": string, "ts": number} (ts: epoch milliseconds) from every file in
 * --input; watermarks allow events to be out of order by up to 5000 ms within a file. Windows
 * are [start, start + size) for every start that is a multiple of --slide-ms (so each event is
 * in size/slide windows; --size-ms must be a multiple of --slide-ms).
 *
 * Two keyed stages:
 *   1. per item, per sliding window: the item's count (a keyed window aggregate with a window
 *      function adding the window's end, uid `counts`);
 *   2. per window (keyed by its end): the counts of all items of that window are collected and,
 *      once the watermark reaches the window's end, ranked by count descending, ties broken by
 *      item name ascending; the first --top (default 3) are written (uid `top`).
 *
 * Writes one line per ranked item {"windowEnd", "item", "count", "rank"} (rank 1 = most
 * frequent). A window whose events name fewer than N items has fewer lines.
 */
import { parseArgs } from 'node:util';
import {
  type AggregateFunction,
  type Collector,
  defineJob,
  FileSink,
  FileSource,
  type KeyedContext,
  type KeyedProcessFunction,
  type KeyedRuntimeContext,
  type ListState,
  ListStateDescriptor,
  type OnTimerContext,
  type ProcessWindowFunction,
  SlidingEventTimeWindows,
  WatermarkStrategy,
} from 'eddy';

export interface ItemEvent {
  item: string;
  ts: number;
}

export interface ItemCount {
  windowEnd: number;
  item: string;
  count: number;
}

export interface RankedItem {
  windowEnd: number;
  item: string;
  count: number;
  rank: number;
}

export const OUT_OF_ORDERNESS_MS = 5000;

/** Counts an item's events in a window. */
export const countItems: AggregateFunction<ItemEvent, number, number> = {
  createAccumulator: () => 0,
  add: (_e, n) => n + 1,
  getResult: (n) => n,
};

/** The item's count with its window's end (the single pre-aggregated value). */
export const toItemCount: ProcessWindowFunction<number, ItemCount, string> = {
  process(item, ctx, counts, out) {
    out.collect({ windowEnd: ctx.window.end, item, count: counts[0]! });
  },
};

/** Count desc, then item name asc: a total order, so the ranking is deterministic. */
export const byRank = (a: ItemCount, b: ItemCount): number =>
  b.count - a.count || (a.item < b.item ? -1 : a.item > b.item ? 1 : 0);

/**
 * Stage 2, keyed by window end: collects the window's per-item counts and ranks them when the
 * watermark reaches the window end. Every count of that window was emitted by stage 1 before
 * the watermark that made it fire, so all of them are here by then.
 */
class TopN implements KeyedProcessFunction<number, ItemCount, RankedItem> {
  private counts!: ListState<ItemCount>;

  constructor(private readonly n: number) {}

  open(ctx: KeyedRuntimeContext): void {
    this.counts = ctx.getState(new ListStateDescriptor<ItemCount>('counts'));
  }

  processElement(c: ItemCount, ctx: KeyedContext<number>): void {
    this.counts.add(c);
    ctx.timerService.registerEventTimeTimer(c.windowEnd);
  }

  onTimer(_ts: number, ctx: OnTimerContext<number>, out: Collector<RankedItem>): void {
    const ranked = this.counts.get().sort(byRank);
    this.counts.clear();
    const windowEnd = ctx.currentKey;
    ranked.slice(0, this.n).forEach((c, i) => {
      out.collect({ windowEnd, item: c.item, count: c.count, rank: i + 1 });
    });
  }
}

const positiveInt = (flag: string, value: string | undefined): number => {
  const n = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isSafeInteger(n) || n <= 0) {
    throw new Error(`top-items: --${flag} must be a positive integer, got '${value}'`);
  }
  return n;
};

const USAGE =
  'top-items needs -- --input <dir> --output <dir> --size-ms <ms> --slide-ms <ms> [--top <n>] [--rate <events/s>]';

export default defineJob({
  name: 'top-items',
  build(env, args) {
    const { values } = parseArgs({
      args: [...args],
      options: {
        input: { type: 'string' },
        output: { type: 'string' },
        'size-ms': { type: 'string' },
        'slide-ms': { type: 'string' },
        top: { type: 'string' },
        rate: { type: 'string' },
      },
    });
    if (
      !values.input ||
      !values.output ||
      values['size-ms'] === undefined ||
      values['slide-ms'] === undefined
    ) {
      throw new Error(USAGE);
    }
    const sizeMs = positiveInt('size-ms', values['size-ms']);
    const slideMs = positiveInt('slide-ms', values['slide-ms']);
    if (sizeMs % slideMs !== 0) {
      throw new Error(
        `top-items: --size-ms (${sizeMs}) must be a multiple of --slide-ms (${slideMs})`,
      );
    }
    const top = values.top === undefined ? 3 : positiveInt('top', values.top);
    const rate = values.rate === undefined ? undefined : Number(values.rate);
    if (rate !== undefined && !(rate > 0)) {
      throw new Error(`top-items: --rate must be a positive number, got '${values.rate}'`);
    }
    env
      .fromSource(FileSource.jsonl<ItemEvent>({ path: values.input, ratePerSecond: rate }), {
        uid: 'events',
        watermarks: WatermarkStrategy.forBoundedOutOfOrderness<ItemEvent>(
          OUT_OF_ORDERNESS_MS,
        ).withTimestampAssigner((e) => e.ts),
      })
      .keyBy((e) => e.item)
      .window(SlidingEventTimeWindows.of(sizeMs, slideMs))
      .aggregate(countItems, toItemCount, { uid: 'counts', name: 'counts' })
      .keyBy((c) => c.windowEnd)
      .process(new TopN(top), { uid: 'top', name: 'top' })
      .sinkTo(FileSink.jsonl<RankedItem>({ path: values.output }), { uid: 'out' });
  },
});
