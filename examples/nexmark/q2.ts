/**
 * Nexmark q2, selection: the bids on every 123rd auction.
 *
 *   SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;
 */
import { defineJob } from 'eddy';
import { nexmarkJob } from './common.js';

export default defineJob({
  name: 'nexmark-q2',
  build(env, args) {
    const job = nexmarkJob('q2', env, args);
    job.sink(
      job.bids
        .filter((b) => b.auction % 123 === 0)
        .map((b) => ({ auction: b.auction, price: b.price })),
    );
  },
});
