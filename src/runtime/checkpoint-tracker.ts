/**
 * The job master's checkpoint state machine, pure (no I/O, no timers: the caller passes the
 * time). One checkpoint is in flight at a time.
 *
 * ```
 *   trigger ──▶ pending ──(last ack)──▶ committing ──(outcome from disk)──▶ completed
 *                  │                        │
 *                  └──▶ declined ◀──────────┘ (only when `_metadata` is not valid on disk)
 *      (worker decline, timeout, worker failure, attempt failure)
 * ```
 *
 * A committing checkpoint is never declined by anything but its own commit outcome: it may be
 * complete on disk already, so only what is on disk after the commit decides. An attempt that
 * fails meanwhile only marks it *orphaned*: it still completes (and is then the restore point),
 * but nothing is sent to the dead attempt.
 */

export type CheckpointState = 'pending' | 'committing' | 'completed' | 'declined';

/** One checkpoint as the tracker sees it. `A` is what a worker's acknowledgement carries. */
export interface TrackedCheckpoint<A> {
  readonly id: number;
  /** The attempt (generation of workers) it was triggered in; only that attempt may ack it. */
  readonly attempt: number;
  /** Workers of that attempt: all must acknowledge. */
  readonly workers: number;
  /** When it was triggered (ms, the caller's clock). */
  readonly triggeredAt: number;
  readonly state: CheckpointState;
  /** Why it was declined (set exactly when `state` is `declined`). */
  readonly reason: string | undefined;
  /** Acknowledgements by worker index. */
  readonly acks: ReadonlyMap<number, A>;
  /** Its attempt failed while it was committing: nobody is left to notify of its outcome. */
  readonly orphaned: boolean;
}

/** What an acknowledgement did. */
export type AckResult =
  /** Not the in-flight pending checkpoint, another attempt, a worker out of range or a repeat. */
  | 'ignored'
  | 'acked'
  /** It was the last one: the checkpoint is now committing; write `_metadata`. */
  | 'commit';

/** What an attempt failure did to the checkpoint in flight. */
export type AttemptFailedResult<A> =
  | { readonly kind: 'none' }
  /** A pending checkpoint of the attempt was declined: delete its directory. */
  | { readonly kind: 'declined'; readonly checkpoint: TrackedCheckpoint<A> }
  /** A committing checkpoint is now orphaned: wait for its commit outcome. */
  | { readonly kind: 'orphaned'; readonly checkpoint: TrackedCheckpoint<A> };

/** A transition the state machine does not allow: a bug in the caller. */
export class IllegalCheckpointTransition extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IllegalCheckpointTransition';
  }
}

interface Mutable<A> {
  readonly id: number;
  readonly attempt: number;
  readonly workers: number;
  readonly triggeredAt: number;
  state: CheckpointState;
  reason: string | undefined;
  readonly acks: Map<number, A>;
  orphaned: boolean;
}

/** How many settled checkpoints {@link CheckpointTracker.get} still knows. */
const HISTORY = 16;

export class CheckpointTracker<A = unknown> {
  private inflight: Mutable<A> | undefined;
  private readonly settled: Mutable<A>[] = [];
  private lastId = 0;
  private lastCompletedId: number | undefined;

  /** @param timeoutMs a pending checkpoint older than this is declined by {@link expire}. */
  constructor(readonly timeoutMs: number) {
    if (!(timeoutMs > 0)) {
      throw new RangeError(`checkpoint timeout must be > 0 ms, got ${timeoutMs}`);
    }
  }

  /** The checkpoint in flight (pending or committing), if any. */
  get current(): TrackedCheckpoint<A> | undefined {
    return this.inflight;
  }

  /** A checkpoint is pending or committing: no other may be triggered. */
  get busy(): boolean {
    return this.inflight !== undefined;
  }

  /** The id of the latest checkpoint that completed, if any. */
  get lastCompleted(): number | undefined {
    return this.lastCompletedId;
  }

  /** The in-flight checkpoint or one of the last settled ones. */
  get(id: number): TrackedCheckpoint<A> | undefined {
    if (this.inflight?.id === id) return this.inflight;
    return this.settled.find((c) => c.id === id);
  }

  /**
   * Starts checkpoint `id` (pending) in `attempt`, which has `workers` workers.
   * @throws IllegalCheckpointTransition if one is in flight or `id` is not above every earlier id.
   */
  trigger(id: number, attempt: number, workers: number, now: number): TrackedCheckpoint<A> {
    if (this.inflight) {
      throw new IllegalCheckpointTransition(
        `cannot trigger checkpoint ${id}: checkpoint ${this.inflight.id} is ${this.inflight.state}`,
      );
    }
    if (!Number.isSafeInteger(id) || id <= this.lastId) {
      throw new IllegalCheckpointTransition(
        `checkpoint ids must increase: ${id} after ${this.lastId}`,
      );
    }
    if (!Number.isSafeInteger(workers) || workers < 1) {
      throw new IllegalCheckpointTransition(`a checkpoint needs >= 1 worker, got ${workers}`);
    }
    this.lastId = id;
    this.inflight = {
      id,
      attempt,
      workers,
      triggeredAt: now,
      state: 'pending',
      reason: undefined,
      acks: new Map(),
      orphaned: false,
    };
    return this.inflight;
  }

  /** Worker `worker` of `attempt` acknowledged checkpoint `id`. */
  ack(id: number, attempt: number, worker: number, payload: A): AckResult {
    const c = this.inflight;
    if (!c || c.id !== id || c.state !== 'pending' || c.attempt !== attempt) return 'ignored';
    if (!Number.isInteger(worker) || worker < 0 || worker >= c.workers || c.acks.has(worker)) {
      return 'ignored';
    }
    c.acks.set(worker, payload);
    if (c.acks.size < c.workers) return 'acked';
    c.state = 'committing';
    return 'commit';
  }

  /**
   * Declines pending checkpoint `id` (a worker declined or failed its snapshot, its directory
   * could not be created, ...). Returns the declined checkpoint, or undefined when `id` is not
   * pending: unknown, already settled, or committing (whose outcome only the commit decides).
   */
  decline(id: number, reason: string): TrackedCheckpoint<A> | undefined {
    const c = this.inflight;
    if (!c || c.id !== id || c.state !== 'pending') return undefined;
    return this.settle(c, 'declined', reason);
  }

  /**
   * Declines pending checkpoint `id` if it is at least `timeoutMs` old at `now`
   * ("checkpoint N expired after T ms"). Returns it if it was declined.
   */
  expire(id: number, now: number): TrackedCheckpoint<A> | undefined {
    const c = this.inflight;
    if (!c || c.id !== id || c.state !== 'pending') return undefined;
    if (now - c.triggeredAt < this.timeoutMs) return undefined;
    return this.settle(c, 'declined', `checkpoint ${id} expired after ${this.timeoutMs} ms`);
  }

  /**
   * Attempt `attempt` failed. Its pending checkpoint is declined; its committing one is
   * orphaned and still waits for {@link committed}.
   */
  attemptFailed(attempt: number, reason: string): AttemptFailedResult<A> {
    const c = this.inflight;
    if (!c || c.attempt !== attempt) return { kind: 'none' };
    if (c.state === 'pending') {
      return { kind: 'declined', checkpoint: this.settle(c, 'declined', reason) };
    }
    c.orphaned = true;
    return { kind: 'orphaned', checkpoint: c };
  }

  /**
   * The commit of checkpoint `id` is over and its outcome is known from disk: `valid` says
   * whether a valid `_metadata` of this checkpoint is there. Completed if so, else declined
   * with `reason`.
   * @throws IllegalCheckpointTransition if `id` is not committing.
   */
  committed(
    id: number,
    valid: boolean,
    reason = 'its metadata could not be written',
  ): TrackedCheckpoint<A> {
    const c = this.inflight;
    if (!c || c.id !== id || c.state !== 'committing') {
      const state = this.get(id)?.state ?? 'unknown';
      throw new IllegalCheckpointTransition(
        `checkpoint ${id} is ${state}, not committing: cannot record its commit outcome`,
      );
    }
    if (!valid) return this.settle(c, 'declined', reason);
    this.lastCompletedId = id;
    return this.settle(c, 'completed', undefined);
  }

  private settle(
    c: Mutable<A>,
    state: 'completed' | 'declined',
    reason: string | undefined,
  ): TrackedCheckpoint<A> {
    c.state = state;
    c.reason = reason;
    this.inflight = undefined;
    this.settled.unshift(c);
    if (this.settled.length > HISTORY) this.settled.pop();
    return c;
  }
}
