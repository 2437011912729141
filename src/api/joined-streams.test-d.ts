import { describe, expectTypeOf, it } from 'vitest';
import type { Collector } from '../runtime/functions.js';
import { memorySource } from '../runtime/testing/memory.js';
import type { TimeWindow } from '../runtime/windows/assigners.js';
import { TumblingEventTimeWindows } from '../runtime/windows/index.js';
import type { DataStream } from './datastream.js';
import { StreamExecutionEnvironment } from './environment.js';
import type {
  CoGroupedStreams,
  JoinedStreams,
  WindowedCoGroup,
  WindowedJoin,
} from './joined-streams.js';

interface Order {
  id: number;
  user: string;
  ts: number;
}
interface Payment {
  orderId: number;
  amount: number;
  ts: number;
}

const env = new StreamExecutionEnvironment({ jobName: 't', parallelism: 1 });
const orders = env.fromSource(memorySource<Order>([])).assignTimestamps((o) => o.ts);
const payments = env.fromSource(memorySource<Payment>([])).assignTimestamps((p) => p.ts);
const windows = TumblingEventTimeWindows.of(1000);

describe('window join and coGroup types', () => {
  it('carries both record types, the key type and the window type', () => {
    expectTypeOf(orders.join(payments)).toEqualTypeOf<JoinedStreams<Order, Payment>>();
    expectTypeOf(orders.coGroup(payments)).toEqualTypeOf<CoGroupedStreams<Order, Payment>>();
    const joined = orders
      .join(payments)
      .where((o) => o.id)
      .equalTo((p) => p.orderId)
      .window(windows);
    expectTypeOf(joined).toEqualTypeOf<WindowedJoin<Order, Payment, number, TimeWindow>>();
    const out = joined.apply((o, p) => {
      expectTypeOf(o).toEqualTypeOf<Order>();
      expectTypeOf(p).toEqualTypeOf<Payment>();
      return { user: o.user, amount: p.amount };
    });
    expectTypeOf(out).toEqualTypeOf<DataStream<{ user: string; amount: number }>>();
  });

  it('coGroup hands the function arrays of each side and a collector', () => {
    const grouped = orders
      .coGroup(payments)
      .where((o) => o.id)
      .equalTo((p) => p.orderId)
      .window(windows);
    expectTypeOf(grouped).toEqualTypeOf<WindowedCoGroup<Order, Payment, number, TimeWindow>>();
    const out = grouped.apply((os, ps, collector: Collector<number>) => {
      expectTypeOf(os).toEqualTypeOf<Order[]>();
      expectTypeOf(ps).toEqualTypeOf<Payment[]>();
      collector.collect(os.length + ps.length);
    });
    expectTypeOf(out).toEqualTypeOf<DataStream<number>>();
  });

  it('refuses key selectors of different types, and non-key types', () => {
    orders
      .join(payments)
      .where((o) => o.user)
      // @ts-expect-error the right key is a number, the left key a string
      .equalTo((p) => p.orderId);
    orders
      .coGroup(payments)
      .where((o) => [o.user, o.id] as const)
      // @ts-expect-error a tuple key needs a tuple of the same types
      .equalTo((p) => [p.orderId, p.orderId] as const);
    // @ts-expect-error an object is not a key
    orders.join(payments).where((o) => ({ id: o.id }));
    // @ts-expect-error join takes a DataStream, not a record
    orders.join(42);
  });
});
