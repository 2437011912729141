/**
 * Nexmark q4, average price per category: the average winning bid of the closed auctions of
 * each category.
 *
 *   SELECT Q.category, AVG(Q.final) FROM (
 *     SELECT MAX(B.price) AS final, A.category FROM auction A, bid B
 *     WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
 *     GROUP BY A.id, A.category) Q
 *   GROUP BY Q.category;
 *
 * An updating result: output `category, avg, auctions` — one line each time an auction of the
 * category closes, with the average over the `auctions` closed so far (`auctions` grows by one
 * per line, so the line with the largest `auctions` is the category's final value). `avg` is
 * sum / count of integer cents (exact sum; the division is one IEEE operation). Auctions
 * without a bid in their lifetime are not counted (inner join).
 *
 * Stage 1, keyed by auction id (a keyed two-input function): the auction, the highest bid
 * within [dateTime, expires], and bids that arrived before their auction (from another file or
 * subtask). An event-time timer at `expires` closes the auction: every bid that can count has
 * dateTime <= expires and is not late, so it arrived before the watermark passed `expires`. A
 * waiting bid whose auction has not come when the watermark passes the bid's dateTime can
 * never count (the auction's dateTime would be <= the bid's, so it would be late) and is
 * dropped by a timer. A closed auction is remembered for 10 s of event time, so that the many
 * bids a hot auction still gets after it closed are dropped without being buffered (one that
 * comes later still is buffered, then dropped by its timer). Stage 2, keyed by category: running sum and count.
 */
import {
  type Auction,
  type Bid,
  defineJob,
  type KeyedCoProcessFunction,
  type KeyedProcessFunction,
  type ValueState,
  ValueStateDescriptor,
} from 'eddy';
import { nexmarkJob } from './common.js';

export interface Winning {
  category: number;
  final: number;
}

export interface CategoryAverage {
  category: number;
  avg: number;
  auctions: number;
}

interface Open {
  readonly dateTime: number;
  readonly expires: number;
  readonly category: number;
  /** Highest price so far, -1 before the first bid. */
  readonly max: number;
  /** Closed: kept TOMBSTONE_MS longer so that its later bids are dropped at once. */
  readonly closed: boolean;
}

/** How long a closed auction is remembered (event time) to drop its later bids cheaply. */
const TOMBSTONE_MS = 10_000;

/** A bid that came before its auction: [dateTime, price]. */
type Early = readonly [number, number];

const winningBids = (): KeyedCoProcessFunction<number, Auction, Bid, Winning> => {
  let open: ValueState<Open>;
  let early: ValueState<Early[]>;
  const counts = (o: Open, t: number) => t >= o.dateTime && t <= o.expires;
  return {
    open(ctx) {
      open = ctx.getState(new ValueStateDescriptor<Open>('auction'));
      early = ctx.getState(new ValueStateDescriptor<Early[]>('early-bids'));
    },
    processElement1(a, ctx) {
      let max = -1;
      for (const [t, price] of early.value() ?? []) {
        if (price > max && t >= a.dateTime && t <= a.expires) max = price;
      }
      early.clear();
      open.update({
        dateTime: a.dateTime,
        expires: a.expires,
        category: a.category,
        max,
        closed: false,
      });
      ctx.timerService.registerEventTimeTimer(a.expires);
    },
    processElement2(b, ctx) {
      const o = open.value();
      if (o === undefined) {
        early.update([...(early.value() ?? []), [b.dateTime, b.price]]);
        ctx.timerService.registerEventTimeTimer(b.dateTime);
      } else if (!o.closed && b.price > o.max && counts(o, b.dateTime)) {
        open.update({ ...o, max: b.price });
      }
    },
    onTimer(timestamp, ctx, out) {
      const o = open.value();
      if (o === undefined) {
        // The auction never came while its bids could count: drop the bids it would have had.
        const left = (early.value() ?? []).filter(([t]) => t > timestamp);
        if (left.length === 0) early.clear();
        else early.update(left);
        return;
      }
      if (o.closed) {
        if (timestamp >= o.expires + TOMBSTONE_MS) open.clear();
        return;
      }
      if (timestamp < o.expires) return;
      if (o.max >= 0) out.collect({ category: o.category, final: o.max });
      open.update({ ...o, closed: true });
      ctx.timerService.registerEventTimeTimer(o.expires + TOMBSTONE_MS);
    },
  };
};

const averages = (): KeyedProcessFunction<number, Winning, CategoryAverage> => {
  let totals: ValueState<readonly [number, number]>;
  return {
    open(ctx) {
      totals = ctx.getState(new ValueStateDescriptor<readonly [number, number]>('sum-count'));
    },
    processElement(w, ctx, out) {
      const [sum, n] = totals.value() ?? [0, 0];
      const next = [sum + w.final, n + 1] as const;
      totals.update(next);
      out.collect({ category: ctx.currentKey, avg: next[0] / next[1], auctions: next[1] });
    },
  };
};

export default defineJob({
  name: 'nexmark-q4',
  build(env, args) {
    const job = nexmarkJob('q4', env, args);
    job.sink(
      job.auctions
        .keyBy((a) => a.id)
        .connect(job.bids.keyBy((b) => b.auction))
        .process(winningBids, { uid: 'q4-winning', name: 'winning bid per auction' })
        .keyBy((w: Winning) => w.category)
        .process(averages, { uid: 'q4-average', name: 'average per category' }),
    );
  },
});
