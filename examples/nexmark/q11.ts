/**
 * Nexmark q11, user sessions: bids per bidder per event-time session (gap 10 s).
 *
 *   SELECT B.bidder, count(*) as bid_count,
 *     SESSION_START(B.dateTime, INTERVAL '10' SECOND) as starttime,
 *     SESSION_END(B.dateTime, INTERVAL '10' SECOND) as endtime
 *   FROM bid B GROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND);
 *
 * Output `bidder, bid_count, starttime, endtime`: starttime is the session's first bid time,
 * endtime its last bid time + 10 s (the window's exclusive end).
 */
import { defineJob, EventTimeSessionWindows } from 'eddy';
import { countAll, nexmarkJob } from './common.js';

export const GAP_MS = 10_000;

export default defineJob({
  name: 'nexmark-q11',
  build(env, args) {
    const job = nexmarkJob('q11', env, args);
    job.sink(
      job.bids
        .keyBy((b) => b.bidder)
        .window(EventTimeSessionWindows.withGap(GAP_MS))
        .aggregate(
          countAll,
          {
            process(bidder, ctx, [n], out) {
              out.collect({
                bidder,
                bid_count: n!,
                starttime: ctx.window.start,
                endtime: ctx.window.end,
              });
            },
          },
          { uid: 'q11-sessions', name: 'sessions per bidder' },
        ),
    );
  },
});
