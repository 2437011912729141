/**
 * Nexmark q3, local item suggestion: auctions of category 10 with their seller, for sellers in
 * Oregon, Idaho or California.
 *
 *   SELECT P.name, P.city, P.state, A.id
 *   FROM auction AS A INNER JOIN person AS P on A.seller = P.id
 *   WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA');
 *
 * Output `name, city, state, id` (id: the auction's). An unbounded regular join, as a keyed
 * two-input function keyed by person id: a person's record is kept (only name, city and state
 * when the state matches, else a marker, so that its auctions are dropped at once), and an
 * auction that arrives before its seller (another file or subtask) waits in keyed state until
 * the seller arrives. Person ids are unique, so each auction is joined at most once.
 */
import {
  type Auction,
  defineJob,
  type KeyedCoProcessFunction,
  type Person,
  type ValueState,
  ValueStateDescriptor,
} from 'eddy';
import { nexmarkJob } from './common.js';

export const STATES = new Set(['OR', 'ID', 'CA']);
export const CATEGORY = 10;

export interface LocalItem {
  name: string;
  city: string;
  state: string;
  id: number;
}

/** A seller as kept: where it lives, or `false` when the state does not match. */
type Seller = { readonly name: string; readonly city: string; readonly state: string } | false;

const joinSellers = (): KeyedCoProcessFunction<number, Auction, Person, LocalItem> => {
  let seller: ValueState<Seller>;
  let waiting: ValueState<number[]>;
  return {
    open(ctx) {
      seller = ctx.getState(new ValueStateDescriptor<Seller>('seller'));
      waiting = ctx.getState(new ValueStateDescriptor<number[]>('waiting-auctions'));
    },
    processElement1(a, _ctx, out) {
      const s = seller.value();
      if (s === undefined) waiting.update([...(waiting.value() ?? []), a.id]);
      else if (s !== false) out.collect({ name: s.name, city: s.city, state: s.state, id: a.id });
    },
    processElement2(p, _ctx, out) {
      const s: Seller = STATES.has(p.state)
        ? { name: p.name, city: p.city, state: p.state }
        : false;
      seller.update(s);
      const ids = waiting.value();
      if (ids === undefined) return;
      waiting.clear();
      if (s !== false) {
        for (const id of ids) out.collect({ name: s.name, city: s.city, state: s.state, id });
      }
    },
  };
};

export default defineJob({
  name: 'nexmark-q3',
  build(env, args) {
    const job = nexmarkJob('q3', env, args);
    job.sink(
      job.auctions
        .filter((a) => a.category === CATEGORY)
        .keyBy((a) => a.seller)
        .connect(job.persons.keyBy((p) => p.id))
        .process(joinSellers, { uid: 'q3-join', name: 'auctions with their sellers' }),
    );
  },
});
