/**
 * Nexmark q12, processing-time windows: bids per bidder per 10 s tumbling window of
 * processing time (wall clock, aligned to multiples of 10 s since the epoch).
 *
 *   SELECT B.bidder, count(*) as bid_count,
 *     TUMBLE_START(B.p_time, INTERVAL '10' SECOND) as starttime,
 *     TUMBLE_END(B.p_time, INTERVAL '10' SECOND) as endtime
 *   FROM (SELECT *, PROCTIME() as p_time FROM bid) B
 *   GROUP BY B.bidder, TUMBLE(B.p_time, INTERVAL '10' SECOND);
 *
 * Output `bidder, bid_count, starttime, endtime`. Which window a bid lands in depends on when
 * it is processed, so only invariants are checkable: per bidder the counts add up to its bids,
 * windows are 10 s aligned, one line per (bidder, window).
 *
 * Not eddy's processing-time window operator: processing-time timers do not fire at the end of
 * bounded input (only the final watermark is sent), so its last windows would be lost. This
 * keyed function keeps each bidder's open window (start, count) in keyed state and emits it
 * when its processing-time timer fires, when a bid of a later window arrives first, or when
 * the final watermark fires a flush timer (an event-time timer at the largest safe integer).
 * A stop with a savepoint keeps open windows in state; they are emitted after the restore.
 */
import {
  type Bid,
  defineJob,
  type KeyedProcessFunction,
  type ValueState,
  ValueStateDescriptor,
} from 'eddy';
import { nexmarkJob } from './common.js';

export const SIZE_MS = 10_000;
const FLUSH = Number.MAX_SAFE_INTEGER;

export interface BidderWindow {
  bidder: number;
  bid_count: number;
  starttime: number;
  endtime: number;
}

interface Open {
  readonly start: number;
  readonly count: number;
}

const perBidderWindows = (): KeyedProcessFunction<number, Bid, BidderWindow> => {
  let open: ValueState<Open>;
  const line = (bidder: number, w: Open): BidderWindow => ({
    bidder,
    bid_count: w.count,
    starttime: w.start,
    endtime: w.start + SIZE_MS,
  });
  return {
    open(ctx) {
      open = ctx.getState(new ValueStateDescriptor<Open>('open-window'));
    },
    processElement(_bid, ctx, out) {
      const now = ctx.timerService.currentProcessingTime();
      const start = now - (now % SIZE_MS);
      const w = open.value();
      if (w !== undefined && w.start === start) {
        open.update({ start, count: w.count + 1 });
        return;
      }
      if (w !== undefined) {
        // Its timer has not fired yet (it runs through the mailbox): close it now.
        out.collect(line(ctx.currentKey, w));
        ctx.timerService.deleteProcessingTimeTimer(w.start + SIZE_MS - 1);
      } else {
        ctx.timerService.registerEventTimeTimer(FLUSH);
      }
      open.update({ start, count: 1 });
      ctx.timerService.registerProcessingTimeTimer(start + SIZE_MS - 1);
    },
    onTimer(timestamp, ctx, out) {
      const w = open.value();
      if (w === undefined) return;
      if (ctx.timeDomain === 'processing' && w.start + SIZE_MS - 1 > timestamp) return;
      out.collect(line(ctx.currentKey, w));
      open.clear();
      if (ctx.timeDomain === 'processing') ctx.timerService.deleteEventTimeTimer(FLUSH);
    },
  };
};

export default defineJob({
  name: 'nexmark-q12',
  build(env, args) {
    const job = nexmarkJob('q12', env, args);
    job.sink(
      job.bids
        .keyBy((b) => b.bidder)
        .process(perBidderWindows, { uid: 'q12-windows', name: 'windows per bidder' }),
    );
  },
});
