/**
 * Nexmark q1, currency conversion: every bid with its price in euros.
 *
 *   SELECT auction, bidder, 0.908 * price as price, dateTime, extra FROM bid;
 *
 * Prices are whole cents; the converted price is rounded half up to a whole cent, computed in
 * integers so that it is exact: floor((price * 908 + 500) / 1000) (price * 908 < 2^53).
 * (Flink keeps a DECIMAL with three more digits; an integer number of cents is what a
 * downstream system would store.)
 */
import { defineJob } from 'eddy';
import { nexmarkJob } from './common.js';

/** Cents times 0.908, rounded half up to a whole cent, exactly. */
export const toEuroCents = (cents: number): number => Math.floor((cents * 908 + 500) / 1000);

export default defineJob({
  name: 'nexmark-q1',
  build(env, args) {
    const job = nexmarkJob('q1', env, args);
    job.sink(
      job.bids.map((b) => ({
        auction: b.auction,
        bidder: b.bidder,
        price: toEuroCents(b.price),
        dateTime: b.dateTime,
        extra: b.extra,
      })),
    );
  },
});
