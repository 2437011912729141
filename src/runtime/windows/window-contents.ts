/**
 * What a window keeps per window id in `__eddy.window.contents` (and, for process functions,
 * `__eddy.window.elements`), one implementation per kind of window function. All of it is
 * keyed state of the current key: the window operator sets the key before calling these.
 */
import type { AggregateFunction, MapState, ValueState } from '../../state/types.js';
import type { ReduceFunction } from '../functions.js';

/** What each kind of window function keeps per window, in `__eddy.window.contents`. */
export interface Contents {
  add(stateId: string, value: unknown): void;
  /** Folds the contents of `sources` (in window order) into `target` and clears them. */
  merge(target: string, sources: readonly string[]): void;
  /**
   * Calls `fire` with what the window emits: the result (`many` false) or, for process, the
   * records in arrival order (`many` true). Not at all if the window holds nothing.
   */
  emit(stateId: string, fire: (value: unknown, many: boolean) => void): void;
  clear(stateId: string): void;
}

export type UserCall = <R>(fn: () => R) => R;

/** Reduce: the window's running reduction. */
export class ReduceContents<IN> implements Contents {
  private readonly reduce: ReduceFunction<IN>;

  constructor(
    private readonly state: MapState<string, unknown>,
    private readonly call: UserCall,
    fn: { readonly reduce: ReduceFunction<IN> },
  ) {
    this.reduce = fn.reduce;
  }

  add(stateId: string, value: unknown): void {
    const state = this.state;
    if (!state.has(stateId)) {
      state.put(stateId, value);
      return;
    }
    const acc = state.get(stateId) as IN;
    state.put(
      stateId,
      this.call(() => this.reduce(acc, value as IN)),
    );
  }

  merge(target: string, sources: readonly string[]): void {
    const state = this.state;
    let acc = state.get(target) as IN;
    for (const s of sources) {
      const other = state.get(s) as IN;
      acc = this.call(() => this.reduce(acc, other));
      state.delete(s);
    }
    state.put(target, acc);
  }

  emit(stateId: string, fire: (value: unknown, many: boolean) => void): void {
    if (this.state.has(stateId)) fire(this.state.get(stateId), false);
  }

  clear(stateId: string): void {
    this.state.delete(stateId);
  }
}

/** Aggregate: the window's accumulator; the result is computed when it fires. */
export class AggregateContents<IN, ACC> implements Contents {
  constructor(
    private readonly state: MapState<string, unknown>,
    private readonly call: UserCall,
    private readonly fn: AggregateFunction<IN, ACC, unknown>,
  ) {}

  add(stateId: string, value: unknown): void {
    const { state, fn } = this;
    const acc = state.has(stateId)
      ? (state.get(stateId) as ACC)
      : this.call(() => fn.createAccumulator());
    state.put(
      stateId,
      this.call(() => fn.add(value as IN, acc)),
    );
  }

  merge(target: string, sources: readonly string[]): void {
    const { state, fn } = this;
    let acc = state.get(target) as ACC;
    for (const s of sources) {
      const other = state.get(s) as ACC;
      acc = this.call(() => fn.merge!(acc, other));
      state.delete(s);
    }
    state.put(target, acc);
  }

  emit(stateId: string, fire: (value: unknown, many: boolean) => void): void {
    if (!this.state.has(stateId)) return;
    const acc = this.state.get(stateId) as ACC;
    fire(
      this.call(() => this.fn.getResult(acc)),
      false,
    );
  }

  clear(stateId: string): void {
    this.state.delete(stateId);
  }
}

/**
 * Process: the window's records, one map entry each (`<id>#<i>`), with their count under the
 * window id. Merging windows store `[seq, record]` so merged windows keep arrival order.
 */
export class ListContents implements Contents {
  constructor(
    private readonly counts: MapState<string, unknown>,
    private readonly elements: MapState<string, unknown>,
    /** Present for merging windows. */
    private readonly seq: ValueState<number> | undefined,
  ) {}

  add(stateId: string, value: unknown): void {
    const n = (this.counts.get(stateId) as number | undefined) ?? 0;
    let entry = value;
    if (this.seq !== undefined) {
      const seq = this.seq.value() ?? 0;
      this.seq.update(seq + 1);
      entry = [seq, value];
    }
    this.elements.put(`${stateId}#${n}`, entry);
    this.counts.put(stateId, n + 1);
  }

  merge(target: string, sources: readonly string[]): void {
    const all: Array<readonly [number, unknown]> = [];
    for (const id of [target, ...sources]) {
      for (const e of this.read(id)) all.push(e as readonly [number, unknown]);
      if (id !== target) this.clear(id);
    }
    all.sort((a, b) => a[0] - b[0]);
    all.forEach((e, i) => {
      this.elements.put(`${target}#${i}`, e);
    });
    this.counts.put(target, all.length);
  }

  emit(stateId: string, fire: (value: unknown, many: boolean) => void): void {
    if (!this.counts.has(stateId)) return;
    const stored = this.read(stateId);
    fire(
      this.seq === undefined ? stored : stored.map((e) => (e as readonly [number, unknown])[1]),
      true,
    );
  }

  clear(stateId: string): void {
    const n = (this.counts.get(stateId) as number | undefined) ?? 0;
    for (let i = 0; i < n; i++) this.elements.delete(`${stateId}#${i}`);
    this.counts.delete(stateId);
  }

  private read(stateId: string): unknown[] {
    const n = (this.counts.get(stateId) as number | undefined) ?? 0;
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.elements.get(`${stateId}#${i}`);
    return out;
  }
}
