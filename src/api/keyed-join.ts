/**
 * The unbounded regular inner join of two keyed streams: every record is kept in keyed list
 * state forever and joined with every record of the other side with the same key, earlier
 * or later. Built on a keyed two-input process function, so its state checkpoints and
 * rescales by key group like any keyed state.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { Key } from '../keygroups/index.js';
import type { KeyedCoProcessFunction } from '../runtime/two-input-functions.js';
import { ListStateDescriptor } from '../state/descriptors.js';
import type { ListState } from '../state/types.js';
import { type DataStream, describe, type KeyedStream } from './datastream.js';
import type { OperatorOptions, StreamExecutionEnvironment } from './environment.js';
import { requireKeyed } from './interval-join.js';
import type { JoinFunction } from './joined-streams.js';

/**
 * `a.keyBy(f).join(b.keyBy(g))`: an unbounded inner join; `apply` its function.
 * @example
 * users.keyBy((u) => u.id)
 *   .join(orders.keyBy((o) => o.userId))
 *   .apply((u, o) => ({ name: u.name, order: o.id }), { uid: 'users-orders' })
 */
export class KeyedJoin<T, U, K extends Key> {
  /**
   * @internal
   * @throws InvalidArgumentError when the other side is not keyed.
   */
  constructor(
    private readonly left: KeyedStream<T, K>,
    private readonly right: KeyedStream<U, K>,
    env: StreamExecutionEnvironment,
  ) {
    requireKeyed(
      env,
      left,
      right,
      'join',
      'a.keyBy(f).join(b.keyBy(g)) (for a window join: a.join(b).where(f).equalTo(g).window(...))',
    );
  }

  /**
   * Emits `fn(left, right)` for every left and right record with the same key, whenever
   * the second of the two arrives: an arriving record is joined with all stored records of
   * the other side, in their arrival order. Outputs carry the arriving record's event time
   * (when the inputs have timestamps).
   *
   * Unbounded state: every record of both sides is kept in keyed state forever (nothing
   * expires it), so the state grows with the input. Use it for bounded inputs or small key
   * spaces; prefer an interval or window join when time bounds the matches. Default operator
   * name 'keyed-join'; set a `uid`.
   */
  apply<O>(fn: JoinFunction<T, U, O>, options: OperatorOptions = {}): DataStream<O> {
    if (typeof fn !== 'function') {
      throw new InvalidArgumentError(`join apply needs a function, got ${describe(fn)}`);
    }
    return this.left
      .connect(this.right)
      .process<O>(() => keyedJoinFunction<K, T, U, O>(fn), { name: 'keyed-join', ...options });
  }
}

/** @internal exported for the operator tests. */
export const keyedJoinFunction = <K, T, U, O>(
  fn: JoinFunction<T, U, O>,
): KeyedCoProcessFunction<K, T, U, O> => {
  let lefts: ListState<T>;
  let rights: ListState<U>;
  return {
    open(rc) {
      lefts = rc.getState(new ListStateDescriptor<T>('keyed-join-left'));
      rights = rc.getState(new ListStateDescriptor<U>('keyed-join-right'));
    },
    processElement1(left, _ctx, out) {
      lefts.add(left);
      for (const right of rights.get()) out.collect(fn(left, right));
    },
    processElement2(right, _ctx, out) {
      rights.add(right);
      for (const left of lefts.get()) out.collect(fn(left, right));
    },
  };
};
