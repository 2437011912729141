/**
 * Fault injection at the hard points of the checkpoint protocol, for eddy's own fault tests:
 * during barrier alignment, during the asynchronous part of a snapshot, between the state
 * files and `_metadata`, between `_metadata` and the commit notification, during the commit
 * notification, and an abort of a checkpoint that every subtask is working on.
 *
 * Off unless configured: by the environment variable `EDDY_FAULTS` (a JSON array of
 * {@link FaultSpec}; worker threads and child processes inherit it) or by {@link setFaults}
 * (in-thread tests). Each point costs one array-length check when off, and the points sit on
 * checkpoint paths, never per record.
 */
import { closeSync, openSync } from 'node:fs';
import { EddyError } from '../core/errors.js';

export type FaultPoint =
  /** A subtask blocked a channel for a barrier and waits for the others (subtask.ts). */
  | 'alignment'
  /** A worker wrote part of a snapshot's files, before acknowledging (worker-agent.ts). */
  | 'snapshot-async'
  /** Every worker acknowledged; `_metadata` is not written yet (job-master.ts). */
  | 'before-metadata'
  /** `_metadata` is written; no worker was told yet (job-master.ts). */
  | 'after-metadata'
  /** A worker was told a checkpoint completed; its sinks are committing (worker-agent.ts). */
  | 'commit-notify'
  /** The master received a first acknowledgement: it aborts that checkpoint (job-master.ts). */
  | 'abort-checkpoint';

export interface FaultSpec {
  readonly point: FaultPoint;
  /**
   * `throw`: an injected failure (retriable, as an I/O error would be); `kill`: SIGKILL of
   * the whole process (a crash). At `abort-checkpoint` the action is always the abort.
   */
  readonly action: 'throw' | 'kill';
  /** Fires on the n-th time (1-based) this thread reaches the point; default 1. */
  readonly hit?: number | undefined;
  /** Only in this worker (index); default any worker (and the master). */
  readonly worker?: number | undefined;
  /**
   * A file created exclusively when the fault fires: a fault with a marker fires at most
   * once across all threads and processes (so a restarted job does not fail again).
   */
  readonly marker?: string | undefined;
}

let specs: FaultSpec[] = parse(process.env.EDDY_FAULTS);
const hits = new Map<FaultPoint, number>();

function parse(text: string | undefined): FaultSpec[] {
  if (!text) return [];
  try {
    const v = JSON.parse(text) as FaultSpec[];
    return Array.isArray(v) ? v : [];
  } catch {
    throw new EddyError('EDDY_INVALID_ARGUMENT', `EDDY_FAULTS is not a JSON array: ${text}`, {
      domain: 'user',
    });
  }
}

/** Replaces the faults of this thread (tests); `[]` turns injection off. */
export const setFaults = (faults: readonly FaultSpec[]): void => {
  specs = [...faults];
  hits.clear();
};

/** Thrown by an injected `throw` fault. */
export class InjectedFault extends EddyError {
  constructor(point: FaultPoint, where: string) {
    super('EDDY_INTERNAL', `injected fault at ${point} (${where})`, {
      domain: 'external',
      retriable: true,
    });
  }
}

/**
 * Reached a fault point. Returns true when a fault fired whose action the caller carries out
 * itself (`abort-checkpoint`); throws for `throw`; never returns for `kill`.
 */
export const faultPoint = (point: FaultPoint, where: string, worker?: number): boolean => {
  if (specs.length === 0) return false;
  const n = (hits.get(point) ?? 0) + 1;
  hits.set(point, n);
  for (const f of specs) {
    if (f.point !== point || (f.hit ?? 1) !== n) continue;
    if (f.worker !== undefined && worker !== undefined && f.worker !== worker) continue;
    if (f.marker !== undefined && !claim(f.marker)) continue;
    if (point === 'abort-checkpoint') return true;
    if (f.action === 'kill') process.kill(process.pid, 'SIGKILL');
    throw new InjectedFault(point, where);
  }
  return false;
};

/** Creates `path` exclusively; false when it exists (the fault fired elsewhere already). */
const claim = (path: string): boolean => {
  try {
    closeSync(openSync(path, 'wx'));
    return true;
  } catch {
    return false;
  }
};
