/**
 * The REST API's JSON shapes (docs/REST.md). Fields the server may leave out are optional, so
 * the views degrade to "—" instead of failing.
 */

export interface Subtask {
  readonly index: number;
  /** Worker thread running it; null before its first metrics sample. */
  readonly worker?: number | string | null;
  readonly recordsIn: number;
  readonly recordsOut: number;
  readonly recordsInPerSecond: number;
  readonly recordsOutPerSecond: number;
  /** 0–1. */
  readonly backpressure: number;
  /** Event-time watermark in ms, or null before the first one. */
  readonly watermark?: number | null;
  /** Null for a subtask of an operator without keyed state. */
  readonly keyGroupRange: readonly [number, number] | null;
  /** In the latest completed snapshot; null until one exists at the current parallelism. */
  readonly stateBytes: number | null;
}

export interface Vertex {
  readonly uid: string;
  readonly name: string;
  readonly kind?: 'source' | 'operator' | 'sink' | string;
  readonly keyed?: boolean;
  readonly parallelism: number;
  readonly maxParallelism: number;
  readonly recordsInPerSecond?: number;
  readonly recordsOutPerSecond?: number;
  readonly backpressure?: number;
  readonly stateBytes?: number | null;
  readonly subtasks: readonly Subtask[];
}

export interface Edge {
  readonly from: string;
  readonly to: string;
  readonly partitioning: string;
}

export interface JobSummary {
  readonly id: string;
  readonly name: string;
  readonly status: string;
  readonly parallelism?: number;
  readonly startedAt?: string;
  readonly startTime?: string;
  /** The dashboard of the job (each job serves its own). */
  readonly url?: string;
}

/** What the last rescale did and cost. */
export interface LastRescale {
  readonly at: string;
  readonly fromParallelism: number;
  readonly toParallelism: number;
  readonly pauseMs: number;
  readonly bytesRead: number;
  readonly keyGroups: number;
  readonly savepoint: string;
}

export interface JobDetail extends JobSummary {
  readonly parallelism: number;
  readonly maxParallelism?: number;
  readonly restarts?: number;
  /** A rescale is in progress. */
  readonly rescaling?: boolean;
  readonly lastRescale?: LastRescale | null;
  readonly vertices: readonly Vertex[];
  readonly edges: readonly Edge[];
}

export interface CheckpointEntry {
  readonly id: number;
  readonly kind: 'checkpoint' | 'savepoint' | string;
  readonly status: string;
  readonly triggerTime?: string | number;
  readonly durationMs?: number;
  readonly duration?: number;
  readonly syncMs?: number | null;
  readonly asyncMs?: number | null;
  readonly bytes?: number | null;
  readonly path?: string | null;
  /** Why a failed one failed. */
  readonly cause?: string;
}

export interface CheckpointHistory {
  /** Newest first. */
  readonly history: readonly CheckpointEntry[];
  readonly counts?: { readonly completed: number; readonly failed: number };
  readonly latestFailure?: CheckpointEntry | null;
}

/** `GET /api/jobs/:id/key-groups`: state bytes per key group in the latest snapshot. */
export interface KeyGroupBytes {
  readonly checkpointId: number | null;
  readonly path: string | null;
  readonly operators: ReadonlyArray<{
    readonly uid: string;
    readonly name: string;
    readonly maxParallelism: number;
    readonly parallelism: number;
    /** Index = key group. */
    readonly bytes: readonly number[];
  }>;
}

/** One read of a keyed state file of the latest checkpoint. */
export interface PlanRead {
  readonly file: string;
  readonly offset: number;
  readonly length: number;
  readonly keyGroups: readonly [number, number];
  /** The old subtask whose handle the read comes from. */
  readonly oldSubtask?: number;
  /** Blocks the read covers, of which deltas (incremental checkpoints). */
  readonly blocks?: number;
  readonly deltas?: number;
}

export interface PlanSubtask {
  readonly index: number;
  readonly keyGroupRange: readonly [number, number];
  readonly bytes: number;
  readonly reads: readonly PlanRead[];
}

export interface OperatorPlan {
  readonly parallelism: number;
  readonly subtasks: readonly PlanSubtask[];
  readonly bytesRead: number;
  readonly bytesNeeded: number;
  readonly readAmplification: number;
  readonly movedKeyGroups: number;
  readonly movedBytes: number;
}

export interface PlannedOperator {
  readonly uid: string;
  readonly name: string;
  readonly parallelism: number;
  readonly maxParallelism: number;
  readonly keyed?: boolean;
  readonly keyedStateBytes?: number;
  readonly plan?: OperatorPlan;
}

/** `GET /api/jobs/:id/rescale-plan`: the same data as `eddy inspect --plan N --json`. */
export interface RescalePlan {
  readonly path?: string;
  readonly checkpointId?: number;
  readonly savepoint?: boolean;
  readonly operators: readonly PlannedOperator[];
}

/** `POST /api/jobs/:id/rescale`: the same report as `eddy rescale`. */
export interface RescaleReport {
  readonly unchanged?: boolean;
  readonly savepoint?: string;
  readonly fromParallelism?: number;
  readonly toParallelism?: number;
  readonly parallelism?: number;
  readonly pauseMs?: number;
  readonly prepareMs?: number;
  readonly bytesRead?: number;
  readonly keyGroups?: number;
  readonly restoreMs?: number;
}
