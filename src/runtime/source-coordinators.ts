/**
 * The job master's host of split enumerators (`Source.createEnumerator`), one per source
 * operator that has one. Pure of I/O (the enumerators may do their own, e.g. list files):
 * what an enumerator sends a reader goes out through the `send` callback, and the job master
 * turns it into a `sourceEvent` message for the worker running that reader subtask.
 *
 * Lifecycle per attempt: construct with the restored checkpoint's enumerator states, `start()`
 * once every reader is open and before the workers are told to start (each enumerator's
 * `start`, then `addReader(i)` for each of its subtasks), `handleReaderEvent` for each
 * `sourceEvent` from a worker, `snapshot(id)` when a checkpoint is triggered,
 * `notifyCheckpointComplete(id)` when it completes, and `close()` at teardown.
 *
 * Every error an enumerator throws (or causes, such as an assignment to a subtask that does
 * not exist) leaves as an EddyError naming the source: its code, domain and retriability are
 * kept when it was an EddyError already.
 */
import { EddyError, JobFailedError } from '../core/errors.js';
import type { Source, SplitEnumerator, SplitEnumeratorContext } from './io.js';
import type { ReaderEvent } from './protocol.js';

/** One source operator of the job. */
export interface CoordinatedSource {
  readonly uid: string;
  /** Operator name for error messages (default: the source's `defaultName`). */
  readonly name?: string | undefined;
  readonly source: Source<unknown>;
  readonly parallelism: number;
  /**
   * Whether this source's readers restore operator state in this attempt (exactly their
   * `ConnectorContext.isRestored`: the restored checkpoint has state for this uid).
   */
  readonly isRestored: boolean;
  /**
   * The enumerator state stored for this uid in the restored checkpoint; undefined on a fresh
   * start, and for a checkpoint written before enumerators existed.
   */
  readonly restoredState?: unknown;
}

/** Delivers `event` to reader subtask `subtask` of source `uid` (in order per reader). */
export type ReaderEventSender = (uid: string, subtask: number, event: ReaderEvent) => void;

interface Hosted {
  readonly uid: string;
  readonly label: string;
  readonly parallelism: number;
  readonly enumerator: SplitEnumerator;
  /** Subtasks told `noMoreSplits`: assigning to them afterwards is a bug of the enumerator. */
  readonly noMore: Set<number>;
}

/**
 * Runs the split enumerators of a job's sources in the job master.
 *
 * @example
 * const coordinators = new SourceCoordinators(
 *   [{ uid: 'events', source, parallelism: 4, isRestored: false }],
 *   (uid, subtask, event) => workers[subtask].post({ type: 'sourceEvent', uid, subtask, event }),
 * );
 * await coordinators.start(); // then post 'start' to the workers
 * const enumeratorStates = coordinators.snapshot(7); // { events: {...} }, stored in _metadata
 */
export class SourceCoordinators {
  private readonly hosted = new Map<string, Hosted>();
  /** Uids of sources without an enumerator: their readers' events are dropped. */
  private readonly plain = new Set<string>();
  private started = false;
  private closed = false;

  constructor(
    sources: readonly CoordinatedSource[],
    private readonly send: ReaderEventSender,
    /** An enumerator failed outside a call of ours (`ctx.fail`): fails the attempt. */
    private readonly onFailure: (e: EddyError) => void = () => {},
  ) {
    for (const s of sources) {
      const label = `source '${s.name ?? s.source.defaultName}' (uid ${s.uid})`;
      if (this.hosted.has(s.uid) || this.plain.has(s.uid)) {
        throw new EddyError('EDDY_INTERNAL', `${label} is listed twice`);
      }
      if (s.source.createEnumerator === undefined) {
        this.plain.add(s.uid);
        continue;
      }
      const noMore = new Set<number>();
      const ctx = this.enumeratorContext(s, label, noMore);
      const enumerator = guard(label, 'createEnumerator', () => s.source.createEnumerator!(ctx));
      this.hosted.set(s.uid, { uid: s.uid, label, parallelism: s.parallelism, enumerator, noMore });
    }
  }

  /** Uids of the sources that have an enumerator (and so state in `snapshot`). */
  get uids(): string[] {
    return [...this.hosted.keys()];
  }

  /**
   * Starts every enumerator (concurrently), then calls `addReader(i)` for every subtask of
   * each, in subtask order. Call once every reader is open and before the workers start
   * polling, so assignments made here reach the readers before their first poll.
   */
  async start(): Promise<void> {
    if (this.started) throw new EddyError('EDDY_INTERNAL', 'source coordinators started twice');
    this.started = true;
    const all = [...this.hosted.values()];
    const results = await Promise.allSettled(
      all.map((h) => guardAsync(h.label, 'start', () => h.enumerator.start())),
    );
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    for (const h of all) {
      for (let i = 0; i < h.parallelism; i++) {
        if (this.closed) return;
        guard(h.label, `addReader(${i})`, () => h.enumerator.addReader(i));
      }
    }
  }

  /**
   * An event a reader sent with `ctx.sendSourceEvent`. Dropped for a source without an
   * enumerator and after `close`; an unknown uid or subtask is an internal error.
   */
  handleReaderEvent(uid: string, subtask: number, event: unknown): void {
    if (this.closed || this.plain.has(uid)) return;
    const h = this.hosted.get(uid);
    if (h === undefined) {
      throw new EddyError('EDDY_INTERNAL', `source event for unknown source uid ${uid}`);
    }
    if (!isSubtask(subtask, h.parallelism)) {
      throw new EddyError(
        'EDDY_INTERNAL',
        `${h.label}: source event from subtask ${subtask}, parallelism is ${h.parallelism}`,
      );
    }
    guard(h.label, 'handleSourceEvent', () => h.enumerator.handleSourceEvent?.(subtask, event));
  }

  /**
   * The state of every enumerator for checkpoint `checkpointId`, by uid, as a JSON round
   * trip (a copy the enumerator can no longer change, exactly what a restore will see). Call
   * it synchronously when the checkpoint is triggered, right before the workers are told:
   * assignments made later reach the readers after their snapshot. An enumerator whose state
   * is undefined has no entry.
   */
  snapshot(checkpointId: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const h of this.hosted.values()) {
      const state = guard(h.label, 'snapshotState', () => h.enumerator.snapshotState(checkpointId));
      if (state === undefined) continue;
      let json: string | undefined;
      try {
        json = JSON.stringify(state);
      } catch (e) {
        throw new EddyError(
          'EDDY_STATE',
          `${h.label}: split enumerator state is not JSON: ${(e as Error).message}`,
          { cause: e },
        );
      }
      if (json !== undefined) out[h.uid] = JSON.parse(json);
    }
    return out;
  }

  /** Checkpoint `checkpointId` was declined: it will never complete. */
  notifyCheckpointAborted(checkpointId: number): void {
    if (this.closed) return;
    for (const h of this.hosted.values()) {
      guard(h.label, 'notifyCheckpointAborted', () =>
        h.enumerator.notifyCheckpointAborted?.(checkpointId),
      );
    }
  }

  notifyCheckpointComplete(checkpointId: number): void {
    if (this.closed) return;
    for (const h of this.hosted.values()) {
      guard(h.label, 'notifyCheckpointComplete', () =>
        h.enumerator.notifyCheckpointComplete?.(checkpointId),
      );
    }
  }

  /**
   * Closes every enumerator (also after a failed `start`); rejects with the first failure
   * once all were closed. Idempotent; afterwards assignments and events are dropped.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const results = await Promise.allSettled(
      [...this.hosted.values()].map((h) =>
        guardAsync(h.label, 'close', () => h.enumerator.close()),
      ),
    );
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  }

  private enumeratorContext(
    s: CoordinatedSource,
    label: string,
    noMore: Set<number>,
  ): SplitEnumeratorContext {
    const check = (subtask: number, what: string) => {
      if (!isSubtask(subtask, s.parallelism)) {
        throw remember(
          new EddyError(
            'EDDY_INTERNAL',
            `${label}: split enumerator ${what} subtask ${subtask}, parallelism is ${s.parallelism}`,
          ),
        );
      }
    };
    return {
      parallelism: s.parallelism,
      restoredState: s.restoredState,
      isRestored: s.isRestored,
      assignSplits: (subtask, splits) => {
        check(subtask, 'assigned splits to');
        if (noMore.has(subtask)) {
          throw remember(
            new EddyError(
              'EDDY_INTERNAL',
              `${label}: split enumerator assigned splits to subtask ${subtask} after signalling no more splits`,
            ),
          );
        }
        if (this.closed || splits.length === 0) return;
        this.send(s.uid, subtask, { kind: 'splits', splits: [...splits] });
      },
      signalNoMoreSplits: (subtask) => {
        check(subtask, 'signalled no more splits to');
        if (noMore.has(subtask)) return;
        noMore.add(subtask);
        if (!this.closed) this.send(s.uid, subtask, { kind: 'noMoreSplits' });
      },
      sendEventToReader: (subtask, event) => {
        check(subtask, 'sent an event to');
        if (!this.closed) this.send(s.uid, subtask, { kind: 'custom', event });
      },
      fail: (error) => {
        if (!this.closed) this.onFailure(named(label, 'failed', error));
      },
    };
  }
}

const isSubtask = (i: number, parallelism: number): boolean =>
  Number.isSafeInteger(i) && i >= 0 && i < parallelism;

/**
 * An error from an enumerator, as an EddyError naming the source (once). Like a subtask's
 * errors: an EddyError keeps its code, domain and retriability; anything else fails the job.
 */
const named = (label: string, what: string, e: unknown): EddyError => {
  if (e instanceof EddyError) {
    if (namedErrors.has(e)) return e;
    return remember(
      new EddyError(e.code, `${label}, split enumerator ${what}: ${e.message}`, {
        domain: e.domain,
        retriable: e.retriable,
        cause: e,
      }),
    );
  }
  const reason = e instanceof Error ? e.message : String(e);
  return remember(new JobFailedError(`${label}, split enumerator ${what} failed: ${reason}`, e));
};

/** Errors already named after their source (so nesting never names it twice). */
const namedErrors = new WeakSet<EddyError>();
const remember = (e: EddyError): EddyError => {
  namedErrors.add(e);
  return e;
};

const guard = <R>(label: string, what: string, f: () => R): R => {
  try {
    return f();
  } catch (e) {
    throw named(label, what, e);
  }
};

const guardAsync = async (
  label: string,
  what: string,
  f: () => void | Promise<void>,
): Promise<void> => {
  try {
    await f();
  } catch (e) {
    throw named(label, what, e);
  }
};
