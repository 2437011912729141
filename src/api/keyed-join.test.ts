import { afterEach, describe, expect, it } from 'vitest';
import { memorySink, memorySource } from '../runtime/testing/memory.js';
import { StreamExecutionEnvironment } from './environment.js';
import { defineJob, runJobInThread } from './job.js';
import { joinHarness } from './join-harness.testkit.js';
import { keyedJoinFunction } from './keyed-join.js';

interface Ev {
  id: string;
  ts: number;
}
const ev = (id: string, ts = 0): Ev => ({ id, ts });

let disposers: (() => void)[] = [];
afterEach(() => {
  for (const d of disposers) d();
  disposers = [];
});

describe('unbounded keyed join function', () => {
  it('joins each arriving record with every stored record of the other side, in arrival order', async () => {
    const h = await joinHarness(
      keyedJoinFunction<string, Ev, Ev, string>((l, r) => `${l.id}-${r.id}`),
      (e) => e.ts,
    );
    disposers.push(h.dispose);
    h.left('k', ev('L1', 5));
    h.right('k', ev('R1', 1));
    h.right('j', ev('J1')); // another key
    h.right('k', ev('R2', 9));
    h.left('k', ev('L2', 3));
    h.watermark(Number.POSITIVE_INFINITY); // nothing expires
    h.right('k', ev('R3'));
    expect(h.out).toEqual([
      { value: 'L1-R1', ts: 1 },
      { value: 'L1-R2', ts: 9 },
      { value: 'L2-R1', ts: 3 },
      { value: 'L2-R2', ts: 3 },
      { value: 'L1-R3', ts: 0 },
      { value: 'L2-R3', ts: 0 },
    ]);
  });
});

interface User {
  id: number;
  name: string;
}
interface Order {
  user: number;
  item: string;
}

describe('unbounded keyed join at build time', () => {
  it('refuses a non-keyed side, naming the streams', () => {
    const e = new StreamExecutionEnvironment({ jobName: 't', parallelism: 1 });
    const users = e.fromSource(memorySource<User>([]), { name: 'users' });
    const orders = e.fromSource(memorySource<Order>([]), { name: 'orders' });
    expect(() => users.keyBy((u) => u.id).join(orders as never)).toThrow(
      /join: the keyed stream from 'users' \(uid users-0\) needs another keyed stream, got the non-keyed stream from 'orders' \(uid orders-1\)/,
    );
    const joined = users.keyBy((u) => u.id).join(orders.keyBy((o) => o.user));
    expect(() => joined.apply('x' as never)).toThrow(/join apply needs a function, got string/);
  });
});

describe('unbounded keyed join in a job', () => {
  const users: User[] = [
    { id: 1, name: 'ann' },
    { id: 2, name: 'bob' },
    { id: 3, name: 'cy' },
  ];
  const orders: Order[] = [
    { user: 1, item: 'x' },
    { user: 2, item: 'y' },
    { user: 1, item: 'z' },
    { user: 4, item: 'w' },
  ];
  const run = async (parallelism: number, badKeys = false) => {
    const out: string[] = [];
    await runJobInThread(
      defineJob({
        name: 'keyed-join',
        build(e) {
          const u = e.fromSource(memorySource(users, { batch: 1 }), { uid: 'users' });
          const o = e.fromSource(memorySource(orders, { batch: 1 }), { uid: 'orders' });
          u.keyBy((x) => x.id)
            .join(o.keyBy((x) => (badKeys ? String(x.user) : x.user) as number))
            .apply((x, y) => `${x.name}:${y.item}`, { name: 'users-orders', uid: 'join' })
            .sinkTo(memorySink(out), { uid: 'out' });
        },
      }),
      { parallelism },
    );
    return out.sort();
  };

  it('emits every pair with the same key whatever the arrival order, at p=1 and p=3', async () => {
    const expected = ['ann:x', 'ann:z', 'bob:y'];
    expect(await run(1)).toEqual(expected);
    expect(await run(3)).toEqual(expected);
  });

  it('fails the job, naming it, when the two keyBys give keys of different kinds', async () => {
    await expect(run(1, true)).rejects.toThrow(/'users-orders'.*different types/);
  });
});
