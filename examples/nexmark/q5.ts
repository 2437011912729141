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
 *
 * The counts are kept per 2 s pane, not per window (as Flink's window aggregation slices
 * hopping windows): one state update per bid instead of five, and a window's count is the sum
 * of its five panes when the watermark passes its end. Same semantics as eddy's sliding
 * window operator: a bid is added to the windows not yet fired and dropped if all are.
 */
import {
  type Bid,
  defineJob,
  type KeyedProcessFunction,
  type MapState,
  MapStateDescriptor,
} from 'eddy';
import { maxPerWindow, nexmarkJob } from './common.js';

export const SIZE_MS = 10_000;
export const SLIDE_MS = 2_000;

export interface HotItem {
  auction: number;
  num: number;
  starttime: number;
}

/** Bids per auction per hopping window, from per-pane counts (see the header). */
const countPerWindow = (): KeyedProcessFunction<number, Bid, HotItem> => {
  let panes: MapState<number, number>;
  return {
    open(ctx) {
      panes = ctx.getState(new MapStateDescriptor<number, number>('bids-per-pane'));
    },
    processElement(b, ctx) {
      const pane = b.dateTime - (b.dateTime % SLIDE_MS);
      const n = panes.get(pane);
      if (n !== undefined) {
        panes.put(pane, n + 1);
        return;
      }
      // The first bid of the pane: a timer at the end of each window that holds the pane.
      const timers = ctx.timerService;
      const watermark = timers.currentWatermark();
      let open = false;
      for (let end = pane + SLIDE_MS; end <= pane + SIZE_MS; end += SLIDE_MS) {
        if (end - 1 <= watermark) continue; // fired already
        timers.registerEventTimeTimer(end - 1);
        open = true;
      }
      if (open) panes.put(pane, 1);
    },
    onTimer(timestamp, ctx, out) {
      const end = timestamp + 1;
      const start = end - SIZE_MS;
      let num = 0;
      for (let pane = start; pane < end; pane += SLIDE_MS) num += panes.get(pane) ?? 0;
      if (num > 0) out.collect({ auction: ctx.currentKey, num, starttime: start });
      // This window was the last to hold its first pane.
      panes.delete(start);
    },
  };
};

export default defineJob({
  name: 'nexmark-q5',
  build(env, args) {
    const job = nexmarkJob('q5', env, args);
    const counts = job.bids
      .keyBy((b) => b.auction)
      .process(countPerWindow, { uid: 'q5-counts', name: 'counts per auction' });
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
