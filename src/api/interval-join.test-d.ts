import { describe, expectTypeOf, it } from 'vitest';
import { memorySource } from '../runtime/testing/memory.js';
import type { DataStream } from './datastream.js';
import { StreamExecutionEnvironment } from './environment.js';
import type { IntervalJoin, IntervalJoined, ProcessJoinContext } from './interval-join.js';
import type { KeyedJoin } from './keyed-join.js';

interface Order {
  id: number;
  ts: number;
}
interface Shipment {
  orderId: number;
  carrier: string;
  ts: number;
}

const env = new StreamExecutionEnvironment({ jobName: 't', parallelism: 1 });
const orders = env.fromSource(memorySource<Order>([])).assignTimestamps((o) => o.ts);
const shipments = env.fromSource(memorySource<Shipment>([])).assignTimestamps((s) => s.ts);

describe('interval join and keyed join types', () => {
  it('carry both record types and the key type', () => {
    const ij = orders.keyBy((o) => o.id).intervalJoin(shipments.keyBy((s) => s.orderId));
    expectTypeOf(ij).toEqualTypeOf<IntervalJoin<Order, Shipment, number>>();
    const between = ij.between(0, 1000).lowerBoundExclusive().upperBoundExclusive();
    expectTypeOf(between).toEqualTypeOf<IntervalJoined<Order, Shipment, number>>();
    const out = between.process<{ id: number; carrier: string }>({
      processElement(o, s, ctx, collector) {
        expectTypeOf(o).toEqualTypeOf<Order>();
        expectTypeOf(s).toEqualTypeOf<Shipment>();
        expectTypeOf(ctx).toEqualTypeOf<ProcessJoinContext>();
        expectTypeOf(ctx.timestamp).toEqualTypeOf<number>();
        collector.collect({ id: o.id, carrier: s.carrier });
      },
    });
    expectTypeOf(out).toEqualTypeOf<DataStream<{ id: number; carrier: string }>>();

    const kj = orders.keyBy((o) => o.id).join(shipments.keyBy((s) => s.orderId));
    expectTypeOf(kj).toEqualTypeOf<KeyedJoin<Order, Shipment, number>>();
    expectTypeOf(kj.apply((o, s) => `${o.id}:${s.carrier}`)).toEqualTypeOf<DataStream<string>>();
  });

  it('refuse keyed streams with different key types, and unkeyed streams', () => {
    // @ts-expect-error the right key is a string, the left key a number
    orders.keyBy((o) => o.id).intervalJoin(shipments.keyBy((s) => s.carrier));
    // @ts-expect-error the right key is a string, the left key a number
    orders.keyBy((o) => o.id).join(shipments.keyBy((s) => s.carrier));
    // @ts-expect-error the other side must be keyed
    orders.keyBy((o) => o.id).intervalJoin(shipments);
    // @ts-expect-error an interval join needs a keyed stream on the left too
    orders.intervalJoin(shipments.keyBy((s) => s.orderId));
  });
});
