/**
 * Keyed timers (docs/DESIGN.md §2): event-time and processing-time timers per key, deduplicated per
 * (key, domain, timestamp) and stored as keyed state — one map state per domain, timestamp ->
 * raw key, in the key's key group — so checkpoints, restores and rescaling carry them with
 * their keys without any timer-specific code. A min-heap per domain orders them for firing;
 * it is an index rebuilt from the state on open, never the source of truth.
 *
 * Deletion is lazy: a deleted timer leaves its heap entry, which is skipped when popped
 * because the state no longer holds it. Hazard: `open()` reads every key group's timers, so
 * an operator with timers decodes all of its lazily restored key groups at open.
 */
import {
  checkMaxParallelism,
  type Key,
  keyGroupForHash,
  keyHashCode,
  normalizeKey,
} from '../keygroups/index.js';
import type { KeyedStateBackend } from '../state/backend.js';
import { MapStateDescriptor } from '../state/descriptors.js';
import type { MapState, NormalizedKey } from '../state/types.js';
import { MIN_WATERMARK, type ProcessingClock, type TimeDomain, type TimerService } from './time.js';

/** State names of the timers; the prefix keeps them apart from user states. */
export const EVENT_TIMERS_STATE = '__eddy.timers.event';
export const PROCESSING_TIMERS_STATE = '__eddy.timers.processing';

export interface KeyedTimersOptions {
  readonly backend: KeyedStateBackend;
  readonly maxParallelism: number;
  readonly clock: ProcessingClock;
  readonly runInMailbox: (action: () => void) => void;
  /** Called with `key` already current (backend and timers). */
  readonly onTimer: (domain: TimeDomain, timestamp: number, key: Key) => void;
}

/**
 * A key, as timers of it sit in the heap (with their timestamps and registration order beside
 * it). Immutable, so all timers of a key can share one: a key's timers registered while its
 * timer fires (a re-armed session) or while one record is processed allocate none or one.
 */
interface Entry {
  readonly key: Key;
  /** The key normalised and its key group, computed once: popping skips the hashing. */
  readonly normalized: NormalizedKey;
  readonly keyGroup: number;
}

/** Timers of one keyed operator subtask. The TimerService methods act on the current key. */
export class KeyedTimers implements TimerService {
  private readonly event = new TimerHeap();
  private readonly processing = new TimerHeap();
  private eventState!: MapState<number, Key>;
  private processingState!: MapState<number, Key>;
  private key: Key | undefined;
  private normalized: NormalizedKey | undefined;
  private keyGroup = 0;
  private watermark = MIN_WATERMARK;
  private seq = 0;
  private wakeup: { at: number; cancel(): void } | undefined;
  /**
   * While a timer's callback runs: its state (domain), timestamp and key. Its state entry is
   * deleted only after the callback (unless the callback registered the same timestamp again),
   * so a re-arming callback (a session's lazy timer) turns delete-then-put, which drops the
   * key's timer map and allocates a new one, into put-then-delete on the same map.
   * `firingState` is undefined when no deletion is pending.
   */
  private firingState: MapState<number, Key> | undefined;
  private firingTimestamp = 0;
  private firingKey: NormalizedKey | undefined;
  /** The current key's entry once made (or restored from the heap), for its next timers. */
  private entry: Entry | undefined;
  private closed = false;

  constructor(private readonly options: KeyedTimersOptions) {
    // Checked once: setCurrentKey runs per record and uses the unchecked key-group function.
    checkMaxParallelism(options.maxParallelism);
  }

  /** Registers the timer states and indexes the timers restored with the key groups. */
  open(): void {
    const { backend } = this.options;
    this.eventState = backend.getState(new MapStateDescriptor<number, Key>(EVENT_TIMERS_STATE));
    this.processingState = backend.getState(
      new MapStateDescriptor<number, Key>(PROCESSING_TIMERS_STATE),
    );
    for (const [heap, name] of [
      [this.event, EVENT_TIMERS_STATE],
      [this.processing, PROCESSING_TIMERS_STATE],
    ] as const) {
      backend.forEachEntry(name, (value, normalized, keyGroup) => {
        let entry: Entry | undefined;
        for (const [timestamp, key] of value as Map<number, Key>) {
          entry ??= { key, normalized, keyGroup };
          heap.push(timestamp, this.seq++, entry);
        }
      });
    }
    this.schedule();
  }

  /**
   * Makes `key` current for state and timers (normalised and routed as keyBy does). `keyGroup`:
   * the key's group when the exchange carried it (computed here otherwise); a wrong one is
   * caught by the backend's range check or, inside the range, would file the key's state under
   * another group, so only the router's own result may be passed.
   */
  setCurrentKey(
    key: Key,
    keyGroup: number = keyGroupForHash(keyHashCode(key), this.options.maxParallelism),
  ): void {
    const normalized = normalizeKey(key);
    this.options.backend.setCurrentKey(normalized, keyGroup);
    this.key = key;
    this.normalized = normalized;
    this.keyGroup = keyGroup;
    this.entry = undefined;
  }

  private restoreKey(e: Entry): void {
    this.options.backend.setCurrentKey(e.normalized, e.keyGroup);
    this.key = e.key;
    this.normalized = e.normalized;
    this.keyGroup = e.keyGroup;
    this.entry = e;
  }

  get currentKey(): Key | undefined {
    return this.key;
  }

  currentWatermark(): number {
    return this.watermark;
  }

  currentProcessingTime(): number {
    return this.options.clock.now();
  }

  registerEventTimeTimer(timestamp: number): void {
    this.register(this.eventState, this.event, timestamp, 'event');
  }

  registerProcessingTimeTimer(timestamp: number): void {
    if (this.register(this.processingState, this.processing, timestamp, 'processing')) {
      this.schedule();
    }
  }

  deleteEventTimeTimer(timestamp: number): void {
    this.delete(this.eventState, this.event, timestamp);
  }

  deleteProcessingTimeTimer(timestamp: number): void {
    this.delete(this.processingState, this.processing, timestamp);
  }

  private delete(state: MapState<number, Key>, heap: TimerHeap, timestamp: number): void {
    if (!state.has(timestamp)) return;
    state.delete(timestamp);
    // The firing timer deleted by its own callback: its heap entry is popped already, and
    // nothing is left to delete after the callback. Any other: its heap entry is now stale.
    if (this.isFiring(state, timestamp)) this.firingState = undefined;
    else heap.addStale(timestamp);
  }

  /** True while `timestamp` of `state` fires for the current key, its entry still stored. */
  private isFiring(state: MapState<number, Key>, timestamp: number): boolean {
    return (
      this.firingState === state &&
      this.firingTimestamp === timestamp &&
      this.firingKey === this.normalized
    );
  }

  /**
   * Fires every event-time timer with timestamp <= `watermark`, ascending (ties in
   * registration order), including timers registered by the callbacks themselves.
   */
  advanceWatermark(watermark: number): void {
    if (watermark > this.watermark) this.watermark = watermark;
    this.fire(this.event, this.eventState, 'event', this.watermark);
  }

  close(): void {
    this.closed = true;
    this.wakeup?.cancel();
    this.wakeup = undefined;
  }

  /** Adds the current key's timer unless it exists; true if it was new. */
  private register(
    state: MapState<number, Key>,
    heap: TimerHeap,
    timestamp: number,
    domain: TimeDomain,
  ): boolean {
    if (!Number.isFinite(timestamp)) {
      throw new TypeError(`a ${domain}-time timer needs a finite timestamp, got ${timestamp}`);
    }
    const key = this.key;
    if (key === undefined) {
      throw new TypeError(`cannot register a ${domain}-time timer: there is no current key`);
    }
    if (this.isFiring(state, timestamp)) {
      // Registered again by its own callback: a new timer, whose state entry is the one the
      // firing timer still holds (it would have been deleted before the callback).
      this.firingState = undefined;
    } else {
      if (state.has(timestamp)) return false;
      state.put(timestamp, key);
    }
    this.entry ??= { key, normalized: this.normalized!, keyGroup: this.keyGroup };
    heap.push(timestamp, this.seq++, this.entry);
    return true;
  }

  private fire(
    heap: TimerHeap,
    state: MapState<number, Key>,
    domain: TimeDomain,
    upTo: number,
  ): void {
    while (heap.size > 0 && heap.peekTimestamp() <= upTo) {
      const timestamp = heap.peekTimestamp();
      const next = heap.pop();
      this.restoreKey(next);
      // Deleted (or already fired through a duplicate heap entry): skip.
      // Only when some entry at this timestamp is known stale: otherwise the entry is pending
      // (the common case for session timers, deleted only when sessions merge), and the
      // state lookup (a cache miss on a key not touched for a while) is skipped.
      if (heap.mayBeStale(timestamp) && !state.has(timestamp)) {
        heap.removeStale(timestamp);
        continue;
      }
      this.firingState = state;
      this.firingTimestamp = timestamp;
      this.firingKey = next.normalized;
      try {
        this.options.onTimer(domain, timestamp, next.key);
      } finally {
        // Still pending: the callback neither deleted nor re-registered it.
        if (this.firingState !== undefined) state.delete(timestamp);
        this.firingState = undefined;
        this.firingKey = undefined;
      }
    }
  }

  /** Keeps one clock timer armed for the earliest processing-time timer. */
  private schedule(): void {
    if (this.closed) return;
    const earliest = this.processing.size > 0 ? this.processing.peekTimestamp() : undefined;
    if (earliest === undefined || this.wakeup?.at === earliest) return;
    this.wakeup?.cancel();
    const handle = this.options.clock.setTimer(earliest, () => {
      this.wakeup = undefined;
      this.options.runInMailbox(() => this.fireProcessing());
    });
    this.wakeup = { at: earliest, cancel: () => handle.cancel() };
  }

  private fireProcessing(): void {
    if (this.closed) return;
    this.fire(this.processing, this.processingState, 'processing', this.options.clock.now());
    this.schedule();
  }
}

/**
 * Binary min-heap by (timestamp, seq), in three parallel arrays: the comparisons read two
 * packed number arrays instead of chasing a pointer per entry (with 100k+ pending timers,
 * those cache misses were most of a pop). `seq` is unique, so the pop order is fully
 * determined. Sifts move a hole instead of swapping.
 */
class TimerHeap {
  private readonly timestamps: number[] = [];
  private readonly seqs: number[] = [];
  private readonly entries: Entry[] = [];
  /**
   * Per timestamp, how many entries have no pending timer in state: each deletion of a
   * pending timer whose entry is in the heap adds one (its entry stays, lazily skipped), each
   * skipped pop removes one. Every other change keeps heap and state in step at its timestamp
   * (a registration pushes one entry and stores one timer; a firing pops one and deletes one,
   * or keeps it when its callback re-registered it and pushes one; open builds the heap from
   * the state), so an entry at a timestamp not counted here is pending. Hazard: anything else
   * that removed timers from the state would break this.
   */
  private readonly stale = new Map<number, number>();

  addStale(timestamp: number): void {
    this.stale.set(timestamp, (this.stale.get(timestamp) ?? 0) + 1);
  }

  /** False when every entry at `timestamp` is pending. */
  mayBeStale(timestamp: number): boolean {
    return this.stale.size > 0 && this.stale.has(timestamp);
  }

  removeStale(timestamp: number): void {
    const n = this.stale.get(timestamp)!;
    if (n === 1) this.stale.delete(timestamp);
    else this.stale.set(timestamp, n - 1);
  }

  get size(): number {
    return this.entries.length;
  }

  /** The smallest timestamp; only when `size > 0`. */
  peekTimestamp(): number {
    return this.timestamps[0]!;
  }

  push(timestamp: number, seq: number, entry: Entry): void {
    const ts = this.timestamps;
    const sq = this.seqs;
    const en = this.entries;
    let i = en.length;
    ts.push(timestamp);
    sq.push(seq);
    en.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = ts[parent]!;
      if (pt < timestamp || (pt === timestamp && sq[parent]! < seq)) break;
      ts[i] = pt;
      sq[i] = sq[parent]!;
      en[i] = en[parent]!;
      i = parent;
    }
    ts[i] = timestamp;
    sq[i] = seq;
    en[i] = entry;
  }

  /** Removes and returns the entry with the smallest (timestamp, seq); only when `size > 0`. */
  pop(): Entry {
    const ts = this.timestamps;
    const sq = this.seqs;
    const en = this.entries;
    const top = en[0]!;
    const lastT = ts.pop()!;
    const lastS = sq.pop()!;
    const lastE = en.pop()!;
    const n = en.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n && (ts[r]! < ts[c]! || (ts[r] === ts[c] && sq[r]! < sq[c]!))) c = r;
      const ct = ts[c]!;
      if (lastT < ct || (lastT === ct && lastS < sq[c]!)) break;
      ts[i] = ct;
      sq[i] = sq[c]!;
      en[i] = en[c]!;
      i = c;
    }
    ts[i] = lastT;
    sq[i] = lastS;
    en[i] = lastE;
    return top;
  }
}
