/**
 * Nexmark q7, highest bid: per 10 s tumbling window of event time, the bids of the window
 * whose price is the window's maximum.
 *
 *   SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra FROM bid B
 *   JOIN (SELECT MAX(price) AS maxprice, window_end as dateTime
 *         FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
 *         GROUP BY window_start, window_end) B1
 *   ON B.price = B1.maxprice
 *   WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime;
 *
 * Output `auction, price, bidder, dateTime, extra`. A bid belongs to its own window only
 * ([start, start + 10 s)): the SQL's inclusive BETWEEN would also pair a bid at exactly the
 * window end with the previous window's maximum.
 *
 * In parallel: the highest bids per auction and window (keyed by auction), then the highest
 * per window (keyed by the window's start), emitted when the watermark passes the window.
 */
import {
  type AggregateFunction,
  defineJob,
  type ProcessWindowFunction,
  TumblingEventTimeWindows,
} from 'eddy';
import { maxPerWindow, nexmarkJob } from './common.js';

export const SIZE_MS = 10_000;

export interface HighestBid {
  auction: number;
  price: number;
  bidder: number;
  dateTime: number;
  extra: string;
}

interface Highest {
  readonly price: number;
  readonly bids: readonly HighestBid[];
}

/** The bids with the highest price (new objects: an accumulator is never changed in place). */
const highest: AggregateFunction<HighestBid, Highest, Highest> = {
  createAccumulator: () => ({ price: -1, bids: [] }),
  add: (b, acc) => {
    if (b.price > acc.price) return { price: b.price, bids: [b] };
    return b.price === acc.price ? { price: acc.price, bids: [...acc.bids, b] } : acc;
  },
  merge: (a, b) =>
    a.price === b.price
      ? { price: a.price, bids: [...a.bids, ...b.bids] }
      : a.price > b.price
        ? a
        : b,
  getResult: (acc) => acc,
};

interface WindowHighest extends Highest {
  readonly starttime: number;
}

const withStart: ProcessWindowFunction<Highest, WindowHighest, number> = {
  process(_auction, ctx, [h], out) {
    out.collect({ ...h!, starttime: ctx.window.start });
  },
};

export default defineJob({
  name: 'nexmark-q7',
  build(env, args) {
    const job = nexmarkJob('q7', env, args);
    const local = job.bids
      .map(
        (b): HighestBid => ({
          auction: b.auction,
          price: b.price,
          bidder: b.bidder,
          dateTime: b.dateTime,
          extra: b.extra,
        }),
      )
      .keyBy((b) => b.auction)
      .window(TumblingEventTimeWindows.of(SIZE_MS))
      .aggregate(highest, withStart, { uid: 'q7-local-max', name: 'highest per auction' });
    job.sink(
      local
        .keyBy((h: WindowHighest) => h.starttime)
        .process(
          () =>
            maxPerWindow<WindowHighest, HighestBid>(
              SIZE_MS,
              (h) => h.starttime,
              (h) => h.price,
              (h, out) => {
                for (const b of h.bids) out.collect(b);
              },
            ),
          { uid: 'q7-max', name: 'highest per window' },
        ),
    );
  },
});
