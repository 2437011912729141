/**
 * Nexmark q5, hot items: per hopping window (size 10 s, slide 2 s) of event time, the
 * auctions with the most bids.
 *
 *   SELECT AuctionBids.auction, AuctionBids.num FROM (
 *     SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime
 *     FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
 *     GROUP BY auction, window_start, window_end) AuctionBids
 *   JOIN (SELECT max(num) AS maxn, starttime, endtime FROM (...the same...) GROUP BY starttime, endtime) MaxBids
 *   ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime
 *      AND AuctionBids.num >= MaxBids.maxn;
 *
 * Output `auction, num, starttime`: starttime (the window's start, epoch ms) is added so that
 * each line names its window (ties give several lines per window).
 *
 * In parallel: counts per auction and window (keyed by auction), then the maximum per window
 * (keyed by the window's start), emitted when the watermark passes the window's end.
 */
import { defineJob, type ProcessWindowFunction, SlidingEventTimeWindows } from 'eddy';
import { countAll, maxPerWindow, nexmarkJob } from './common.js';

export const SIZE_MS = 10_000;
export const SLIDE_MS = 2_000;

export interface HotItem {
  auction: number;
  num: number;
  starttime: number;
}

const toHotItem: ProcessWindowFunction<number, HotItem, number> = {
  process(auction, ctx, [num], out) {
    out.collect({ auction, num: num!, starttime: ctx.window.start });
  },
};

export default defineJob({
  name: 'nexmark-q5',
  build(env, args) {
    const job = nexmarkJob('q5', env, args);
    const counts = job.bids
      .keyBy((b) => b.auction)
      .window(SlidingEventTimeWindows.of(SIZE_MS, SLIDE_MS))
      .aggregate(countAll, toHotItem, { uid: 'q5-counts', name: 'counts per auction' });
    job.sink(
      counts
        .keyBy((c: HotItem) => c.starttime)
        .process(
          () =>
            maxPerWindow<HotItem, HotItem>(
              SIZE_MS,
              (c) => c.starttime,
              (c) => c.num,
              (c, out) => out.collect(c),
            ),
          { uid: 'q5-max', name: 'max per window' },
        ),
    );
  },
});
