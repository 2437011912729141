/**
 * Nexmark q8, monitor new users: persons who opened an account and created an auction in the
 * same 10 s tumbling window of event time.
 *
 *   SELECT P.id, P.name, P.starttime FROM (
 *     SELECT P.id, P.name, TUMBLE_START(P.dateTime, INTERVAL '10' SECOND) AS starttime,
 *       TUMBLE_END(P.dateTime, INTERVAL '10' SECOND) AS endtime
 *     FROM person P GROUP BY P.id, P.name, TUMBLE(P.dateTime, INTERVAL '10' SECOND)) P
 *   JOIN (
 *     SELECT A.seller, TUMBLE_START(A.dateTime, INTERVAL '10' SECOND) AS starttime,
 *       TUMBLE_END(A.dateTime, INTERVAL '10' SECOND) AS endtime
 *     FROM auction A GROUP BY A.seller, TUMBLE(A.dateTime, INTERVAL '10' SECOND)) A
 *   ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime;
 *
 * Output `id, name, starttime`: one line per person and window (the GROUP BYs make both sides
 * distinct, so a person with three auctions in the window is one line, not three — which is
 * why this is a keyed two-input function keyed by person id rather than a window join, which
 * emits every pair). A person's record and the windows its auctions fell in are kept until the
 * watermark passes the window's end (an event-time timer), when no record can join them.
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

export const SIZE_MS = 10_000;

export interface NewUser {
  id: number;
  name: string;
  starttime: number;
}

interface Opened {
  readonly name: string;
  readonly start: number;
  readonly joined: boolean;
}

const windowOf = (t: number) => t - (t % SIZE_MS);

const newUsers = (): KeyedCoProcessFunction<number, Person, Auction, NewUser> => {
  let person: ValueState<Opened>;
  let auctionWindows: ValueState<number[]>;
  return {
    open(ctx) {
      person = ctx.getState(new ValueStateDescriptor<Opened>('person'));
      auctionWindows = ctx.getState(new ValueStateDescriptor<number[]>('auction-windows'));
    },
    processElement1(p, ctx, out) {
      const start = windowOf(p.dateTime);
      const joined = (auctionWindows.value() ?? []).includes(start);
      if (joined) out.collect({ id: p.id, name: p.name, starttime: start });
      person.update({ name: p.name, start, joined });
      ctx.timerService.registerEventTimeTimer(start + SIZE_MS - 1);
    },
    processElement2(a, ctx, out) {
      const start = windowOf(a.dateTime);
      const p = person.value();
      if (p !== undefined) {
        if (p.start === start && !p.joined) {
          out.collect({ id: a.seller, name: p.name, starttime: start });
          person.update({ ...p, joined: true });
        }
        return;
      }
      const windows = auctionWindows.value() ?? [];
      if (!windows.includes(start)) {
        auctionWindows.update([...windows, start]);
        ctx.timerService.registerEventTimeTimer(start + SIZE_MS - 1);
      }
    },
    onTimer(timestamp) {
      const p = person.value();
      if (p !== undefined && p.start + SIZE_MS - 1 <= timestamp) person.clear();
      const windows = auctionWindows.value();
      if (windows === undefined) return;
      const left = windows.filter((s) => s + SIZE_MS - 1 > timestamp);
      if (left.length === 0) auctionWindows.clear();
      else auctionWindows.update(left);
    },
  };
};

export default defineJob({
  name: 'nexmark-q8',
  build(env, args) {
    const job = nexmarkJob('q8', env, args);
    job.sink(
      job.persons
        .keyBy((p) => p.id)
        .connect(job.auctions.keyBy((a) => a.seller))
        .process(newUsers, { uid: 'q8-join', name: 'persons with auctions in their window' }),
    );
  },
});
