/**
 * The JSON shapes of the REST API (docs/REST.md shows each with real output). Everything here
 * is plain JSON: times are ISO 8601 strings or epoch ms as named, sizes are bytes.
 */
import type { JobState } from '../control/types.js';

/** One job in `GET /api/jobs`. */
export interface JobSummary {
  readonly id: string;
  readonly name: string;
  readonly status: JobState;
  /** ISO 8601. */
  readonly startTime: string;
  readonly parallelism: number;
  /** Where this job's REST API and dashboard are served. */
  readonly url: string;
}

/** One subtask of a vertex in `GET /api/jobs/:id`. */
export interface SubtaskView {
  readonly index: number;
  /** Worker thread running it; null before its first metrics sample. */
  readonly worker: number | null;
  /** Records since this subtask started (a rescale or a restart starts it again from 0). */
  readonly recordsIn: number;
  readonly recordsOut: number;
  /** Over the last ~2 s of samples; 0 before two samples. */
  readonly recordsInPerSecond: number;
  readonly recordsOutPerSecond: number;
  /**
   * Fraction (0–1) of the last ~2 s of wall time this subtask spent blocked waiting for
   * output credit (its downstream could not keep up).
   */
  readonly backpressure: number;
  /** Event-time watermark reached (epoch ms); null without event time or before the first. */
  readonly watermark: number | null;
  /** Inclusive key-group range of a keyed operator's subtask; null for others. */
  readonly keyGroupRange: readonly [number, number] | null;
  /**
   * State of this subtask in the latest completed checkpoint or savepoint (keyed + operator
   * state, as written); null until one exists at the current parallelism.
   */
  readonly stateBytes: number | null;
}

export type VertexKind = 'source' | 'operator' | 'sink';

/** An operator of the job graph (chained operators are separate vertices). */
export interface VertexView {
  readonly uid: string;
  readonly name: string;
  readonly kind: VertexKind;
  readonly parallelism: number;
  readonly maxParallelism: number;
  /** Fed by a keyBy: its state is split into key groups. */
  readonly keyed: boolean;
  /** Sums and the maximum backpressure over the subtasks. */
  readonly recordsIn: number;
  readonly recordsOut: number;
  readonly recordsInPerSecond: number;
  readonly recordsOutPerSecond: number;
  readonly backpressure: number;
  readonly stateBytes: number | null;
  readonly subtasks: readonly SubtaskView[];
}

export interface EdgeView {
  /** Vertex uids. */
  readonly from: string;
  readonly to: string;
  readonly partitioning: 'forward' | 'rebalance' | 'broadcast' | 'hash';
  /** Set when the edge carries a side output (its tag id). */
  readonly sideOutput?: string | undefined;
}

/** What the last rescale did and cost (as `eddy rescale` reports it). */
export interface RescaleView {
  readonly at: string;
  readonly fromParallelism: number;
  readonly toParallelism: number;
  readonly operators: Readonly<Record<string, number>>;
  readonly pauseMs: number;
  readonly bytesRead: number;
  readonly keyGroups: number;
  readonly savepoint: string;
}

/** `GET /api/jobs/:id`. */
export interface JobDetails extends JobSummary {
  /** Largest maxParallelism (number of key groups) over the vertices. */
  readonly maxParallelism: number;
  /** Restarts after failures (not rescales) since `eddy run` started. */
  readonly restarts: number;
  /** A rescale is in progress (another one gets 409). */
  readonly rescaling: boolean;
  readonly lastRescale: RescaleView | null;
  /** When the metrics below were sampled (ISO 8601); null before the first sample. */
  readonly metricsTime: string | null;
  readonly vertices: readonly VertexView[];
  readonly edges: readonly EdgeView[];
}

/** One entry of the checkpoint history. */
export interface CheckpointView {
  readonly id: number;
  readonly kind: 'checkpoint' | 'savepoint';
  readonly status: 'completed' | 'failed';
  /** ISO 8601. */
  readonly triggerTime: string;
  /** From trigger to completion or failure. */
  readonly durationMs: number;
  /** Longest synchronous part over the subtasks (null for a failed one). */
  readonly syncMs: number | null;
  /** Longest asynchronous part (writing files) over the workers (null for a failed one). */
  readonly asyncMs: number | null;
  readonly bytes: number | null;
  /** Directory of a completed one; null for a failed one (its directory is deleted). */
  readonly path: string | null;
  /** Why a failed one failed. */
  readonly cause?: string | undefined;
}

/** `GET /api/jobs/:id/checkpoints`. */
export interface CheckpointHistory {
  readonly counts: { readonly completed: number; readonly failed: number };
  /** Newest first, at most the last 100. */
  readonly history: readonly CheckpointView[];
  readonly latestCompleted: CheckpointView | null;
  readonly latestFailure: CheckpointView | null;
}

/** `GET /api/jobs/:id/key-groups`: state bytes per key group in the latest snapshot. */
export interface KeyGroupBytes {
  /** The checkpoint or savepoint measured; null (and no operators) before one exists. */
  readonly checkpointId: number | null;
  readonly path: string | null;
  readonly operators: ReadonlyArray<{
    readonly uid: string;
    readonly name: string;
    readonly maxParallelism: number;
    /** Snapshot parallelism (may differ from the running one right after a rescale). */
    readonly parallelism: number;
    /** Index = key group; bytes of its keyed state (its chain: base + deltas). */
    readonly bytes: readonly number[];
  }>;
}

/** The body of every error response. */
export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    /** The request field that was wrong (400 only). */
    readonly field?: string | undefined;
  };
}
