/**
 * Window join and coGroup of two streams, built as Flink builds them: each side's records are
 * tagged with their side, the two tagged streams are unioned, keyed by the side's key selector
 * and windowed; a process window function splits each window's records by tag and calls the
 * user's function. So the result is an ordinary keyed window operator: it checkpoints, restores
 * and rescales by key group like any other.
 */
import { InvalidArgumentError } from '../core/errors.js';
import type { Key } from '../keygroups/index.js';
import type { Collector } from '../runtime/functions.js';
import { KeyKindCheck } from '../runtime/operators/key-kind-check.js';
import type { TimeWindow, WindowAssigner } from '../runtime/windows/assigners.js';
import type { ProcessWindowFunction } from '../runtime/windows/functions.js';
import { type DataStream, describe } from './datastream.js';
import type { OperatorOptions, StreamExecutionEnvironment } from './environment.js';

/** The function of a window join: one output per pair of a window's left and right records. */
export type JoinFunction<T, U, O> = (left: T, right: U) => O;

/**
 * The function of a window coGroup: called once per window and key with all of the window's
 * left and right records (either may be empty, not both), in arrival order.
 */
export type CoGroupFunction<T, U, O> = (lefts: T[], rights: U[], out: Collector<O>) => void;

/** A record of either input, tagged with its side (Flink's TaggedUnion). */
type Tagged<T, U> =
  | { readonly side: 0; readonly value: T }
  | { readonly side: 1; readonly value: U };

/** Both inputs, the operation's kind and its key selectors, as the builder steps collect them. */
interface Spec<T, U> {
  readonly env: StreamExecutionEnvironment;
  readonly left: DataStream<T>;
  readonly right: DataStream<U>;
  readonly kind: 'join' | 'coGroup';
}

/**
 * `a.join(b)`: pick the left key with `where`, the right key with `equalTo`, then a window
 * assigner, then `apply` a {@link JoinFunction}: an inner join per window and key (the cross
 * product of the window's left and right records with that key).
 * @example
 * orders.join(payments)
 *   .where((o) => o.id)
 *   .equalTo((p) => p.orderId)
 *   .window(TumblingEventTimeWindows.of(60_000))
 *   .apply((o, p) => ({ id: o.id, amount: p.amount }))
 */
export class JoinedStreams<T, U> {
  /** @internal */
  constructor(private readonly spec: Spec<T, U>) {
    checkOther(spec.right, 'join');
  }

  /** The key of a left record. */
  where<K extends Key>(keyOf: (left: T) => K): JoinWhere<T, U, K> {
    return new JoinWhere(this.spec, checkSelector(keyOf, 'join', 'where'));
  }
}

/** `a.join(b).where(f)`: needs the right key, of the same type. */
export class JoinWhere<T, U, K extends Key> {
  /** @internal */
  constructor(
    private readonly spec: Spec<T, U>,
    private readonly leftKey: (left: T) => K,
  ) {}

  /** The key of a right record; it must have the left key's type. */
  equalTo(keyOf: (right: U) => K): JoinEqualTo<T, U, K> {
    return new JoinEqualTo(this.spec, this.leftKey, checkSelector(keyOf, 'join', 'equalTo'));
  }
}

/** `a.join(b).where(f).equalTo(g)`: needs a window assigner. */
export class JoinEqualTo<T, U, K extends Key> {
  /** @internal */
  constructor(
    private readonly spec: Spec<T, U>,
    private readonly leftKey: (left: T) => K,
    private readonly rightKey: (right: U) => K,
  ) {}

  /**
   * The windows both sides are cut into (tumbling, sliding, session; event or processing
   * time). An event-time assigner needs timestamps on both inputs.
   */
  window<W extends TimeWindow>(assigner: WindowAssigner<W>): WindowedJoin<T, U, K, W> {
    return new WindowedJoin({
      ...this.spec,
      leftKey: this.leftKey,
      rightKey: this.rightKey,
      assigner,
    });
  }
}

/** A window join ready to apply its function. */
export class WindowedJoin<T, U, K extends Key, W extends TimeWindow = TimeWindow> {
  /** @internal */
  constructor(private readonly spec: WindowedSpec<T, U, K, W>) {}

  /**
   * Emits `fn(left, right)` for every left and right record of a window with the same key
   * (inner join; for each left record in arrival order, the right records in arrival order),
   * when the window fires. Each result carries the window's max timestamp as its event time.
   * Default operator name 'window-join'; set a `uid` (its window state is keyed state).
   */
  apply<O>(fn: JoinFunction<T, U, O>, options: OperatorOptions = {}): DataStream<O> {
    requireFunction(fn, 'join apply');
    return build<T, U, K, W, O>(this.spec, 'window-join', options, {
      process(_key, _ctx, elements, out) {
        const [lefts, rights] = split(elements);
        for (const l of lefts) for (const r of rights) out.collect(fn(l, r));
      },
    });
  }
}

/**
 * `a.coGroup(b)`: pick the left key with `where`, the right key with `equalTo`, then a window
 * assigner, then `apply` a {@link CoGroupFunction}, called for every window and key that has
 * at least one record on either side.
 * @example
 * views.coGroup(clicks)
 *   .where((v) => v.ad)
 *   .equalTo((c) => c.ad)
 *   .window(TumblingEventTimeWindows.of(60_000))
 *   .apply((vs, cs, out) => out.collect({ ad: (vs[0] ?? cs[0])!.ad, ctr: cs.length / vs.length }))
 */
export class CoGroupedStreams<T, U> {
  /** @internal */
  constructor(private readonly spec: Spec<T, U>) {
    checkOther(spec.right, 'coGroup');
  }

  /** The key of a left record. */
  where<K extends Key>(keyOf: (left: T) => K): CoGroupWhere<T, U, K> {
    return new CoGroupWhere(this.spec, checkSelector(keyOf, 'coGroup', 'where'));
  }
}

/** `a.coGroup(b).where(f)`: needs the right key, of the same type. */
export class CoGroupWhere<T, U, K extends Key> {
  /** @internal */
  constructor(
    private readonly spec: Spec<T, U>,
    private readonly leftKey: (left: T) => K,
  ) {}

  /** The key of a right record; it must have the left key's type. */
  equalTo(keyOf: (right: U) => K): CoGroupEqualTo<T, U, K> {
    return new CoGroupEqualTo(this.spec, this.leftKey, checkSelector(keyOf, 'coGroup', 'equalTo'));
  }
}

/** `a.coGroup(b).where(f).equalTo(g)`: needs a window assigner. */
export class CoGroupEqualTo<T, U, K extends Key> {
  /** @internal */
  constructor(
    private readonly spec: Spec<T, U>,
    private readonly leftKey: (left: T) => K,
    private readonly rightKey: (right: U) => K,
  ) {}

  /**
   * The windows both sides are cut into (tumbling, sliding, session; event or processing
   * time). An event-time assigner needs timestamps on both inputs.
   */
  window<W extends TimeWindow>(assigner: WindowAssigner<W>): WindowedCoGroup<T, U, K, W> {
    return new WindowedCoGroup({
      ...this.spec,
      leftKey: this.leftKey,
      rightKey: this.rightKey,
      assigner,
    });
  }
}

/** A window coGroup ready to apply its function. */
export class WindowedCoGroup<T, U, K extends Key, W extends TimeWindow = TimeWindow> {
  /** @internal */
  constructor(private readonly spec: WindowedSpec<T, U, K, W>) {}

  /**
   * Calls `fn(lefts, rights, out)` once per window and key with at least one record on either
   * side, when the window fires. Each result carries the window's max timestamp as its event
   * time. Default operator name 'window-cogroup'; set a `uid` (its window state is keyed state).
   */
  apply<O>(fn: CoGroupFunction<T, U, O>, options: OperatorOptions = {}): DataStream<O> {
    requireFunction(fn, 'coGroup apply');
    return build<T, U, K, W, O>(this.spec, 'window-cogroup', options, {
      process(_key, _ctx, elements, out) {
        const [lefts, rights] = split(elements);
        fn(lefts, rights, out);
      },
    });
  }
}

interface WindowedSpec<T, U, K, W extends TimeWindow> extends Spec<T, U> {
  readonly leftKey: (left: T) => K;
  readonly rightKey: (right: U) => K;
  readonly assigner: WindowAssigner<W>;
}

/** Tag, union, keyBy, window: the window operator gets both sides in one keyed stream. */
const build = <T, U, K extends Key, W extends TimeWindow, O>(
  spec: WindowedSpec<T, U, K, W>,
  defaultName: string,
  options: OperatorOptions,
  windowFn: ProcessWindowFunction<Tagged<T, U>, O, K, W>,
): DataStream<O> => {
  const name = options.name ?? defaultName;
  requireTimestamps(spec, name);
  const { leftKey, rightKey } = spec;
  // Checked where the key is computed (the senders' routing and the window operator), on the
  // first record of each side per graph build, so per worker thread.
  const kinds = new KeyKindCheck(name, ['where(...)', 'equalTo(...)']);
  const tagged = spec.left
    .map<Tagged<T, U>>((value) => ({ side: 0, value }), { name: `${name}-left` })
    .union(
      spec.right.map<Tagged<T, U>>((value) => ({ side: 1, value }), { name: `${name}-right` }),
    );
  return tagged
    .keyBy<K>((t) => {
      const key = t.side === 0 ? leftKey(t.value) : rightKey(t.value);
      if (kinds.pending) kinds.check(t.side, key);
      return key;
    })
    .window(spec.assigner)
    .process(windowFn, { ...options, name });
};

/** A window's records by side, each in arrival order. */
const split = <T, U>(elements: readonly Tagged<T, U>[]): [T[], U[]] => {
  const lefts: T[] = [];
  const rights: U[] = [];
  for (const e of elements) {
    if (e.side === 0) lefts.push(e.value);
    else rights.push(e.value);
  }
  return [lefts, rights];
};

const requireTimestamps = <T, U>(
  spec: WindowedSpec<T, U, unknown, TimeWindow>,
  name: string,
): void => {
  const { assigner } = spec;
  if (typeof assigner !== 'object' || assigner === null || assigner.timeDomain !== 'event') return;
  const sides = [
    ['left (first)', spec.left],
    ['right (second)', spec.right],
  ] as const;
  for (const [side, stream] of sides) {
    if (typeof stream.timestampOf !== 'function') {
      throw new InvalidArgumentError(
        `${spec.kind} '${name}': ${assigner} is an event-time window but the ${side} input (the stream from ${spec.env.describeInputs(stream.inputs)}) has no timestamps: give its source a WatermarkStrategy (fromSource(source, { watermarks })) or call assignTimestamps(...) on it before ${spec.kind}`,
      );
    }
  }
};

/** The other input must be a DataStream; a KeyedStream is refused (where/equalTo give the keys). */
const checkOther = (other: unknown, op: string): void => {
  const o = other as { keySelector?: unknown; union?: unknown } | null;
  if (typeof o !== 'object' || o === null || typeof o.union !== 'function') {
    const got =
      o !== null && typeof o === 'object' && 'keySelector' in o ? 'a KeyedStream' : describe(other);
    throw new InvalidArgumentError(
      `${op} needs a DataStream as the other input (where/equalTo give the keys), got ${got}`,
    );
  }
};

const checkSelector = <F>(fn: F, op: string, step: string): F => {
  if (typeof fn !== 'function') {
    throw new InvalidArgumentError(
      `${op}(...).${step} needs a key selector function, got ${describe(fn)}`,
    );
  }
  return fn;
};

const requireFunction = (fn: unknown, what: string) => {
  if (typeof fn !== 'function') {
    throw new InvalidArgumentError(`${what} needs a function, got ${describe(fn)}`);
  }
};
