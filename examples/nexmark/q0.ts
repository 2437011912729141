/**
 * Nexmark q0, pass-through: every bid, as `auction, bidder, price, dateTime, extra`.
 *
 *   SELECT auction, bidder, price, dateTime, extra FROM bid;
 *
 * Arguments: see common.ts (`-- --input <dir> | --events <n>, --output <dir>`).
 */
import { defineJob } from 'eddy';
import { nexmarkJob } from './common.js';

export default defineJob({
  name: 'nexmark-q0',
  build(env, args) {
    const job = nexmarkJob('q0', env, args);
    job.sink(
      job.bids.map((b) => ({
        auction: b.auction,
        bidder: b.bidder,
        price: b.price,
        dateTime: b.dateTime,
        extra: b.extra,
      })),
    );
  },
});
