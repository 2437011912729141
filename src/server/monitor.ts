/**
 * What the REST API and /metrics know about one running job: the graph of the current
 * generation (a rescale starts a new one), per-subtask metrics from the master's samples
 * (every 500 ms, see runtime/metrics-sampler.ts) with rates computed here from successive
 * samples, and the checkpoint history. Fed by `eddy run`'s callbacks on the main thread; it
 * never touches the hot path.
 */
import { chainBytes, chainsOf, stateBytesOf } from '../checkpoint/chains.js';
import { loadMetadata } from '../checkpoint/index.js';
import type { CheckpointMetadata, OperatorStateEntry } from '../checkpoint/types.js';
import type { RescaleReport } from '../control/types.js';
import { computeKeyGroupRange } from '../keygroups/index.js';
import type { JobGraph, JobNode } from '../runtime/graph.js';
import type { CheckpointFailure, CheckpointStats } from '../runtime/job-master.js';
import type { SubtaskMetricsReport } from '../runtime/metrics.js';
import { JobPrometheus } from './prometheus.js';
import type {
  CheckpointHistory,
  CheckpointView,
  EdgeView,
  KeyGroupBytes,
  RescaleView,
  SubtaskView,
  VertexKind,
  VertexView,
} from './types.js';

/** Rates and backpressure are measured over the samples of about this long. */
export const RATE_WINDOW_MS = 2000;
const HISTORY = 100;

interface Sample {
  /** performance.now() when the sample arrived. */
  readonly at: number;
  readonly recordsIn: number;
  readonly recordsOut: number;
  readonly backpressuredMs: number;
}

interface SubtaskState {
  worker: number | null;
  watermark: number | null;
  /** Oldest first, spanning about RATE_WINDOW_MS. */
  samples: Sample[];
}

/** The latest completed checkpoint or savepoint (or the restored one), for sizes and plans. */
export interface LatestSnapshot {
  readonly dir: string;
  readonly metadata: CheckpointMetadata;
}

export class JobMonitor {
  readonly prometheus: JobPrometheus;
  private graph: JobGraph | undefined;
  private subtasks = new Map<string, SubtaskState>();
  private metricsTime: number | undefined;
  private history: CheckpointView[] = [];
  private counts = { completed: 0, failed: 0 };
  private latest: LatestSnapshot | undefined;
  /** A newer completed snapshot whose `_metadata` is read only when someone asks (refresh). */
  private unread: { dir: string; checkpointId: number } | undefined;
  private reading: Promise<void> | undefined;
  private stateBytes = new Map<string, number>();
  private restartCount = 0;
  private rescale: RescaleView | undefined;

  constructor(
    readonly id: string,
    readonly name: string,
    /** Reads a completed checkpoint's `_metadata` (injectable for tests). */
    private readonly readMetadata: (dir: string) => Promise<CheckpointMetadata> = loadMetadata,
  ) {
    this.prometheus = new JobPrometheus(name, id);
  }

  /** A generation starts (at start and after each rescale): its graph replaces the last. */
  setGraph(graph: JobGraph): void {
    this.graph = graph;
    this.subtasks.clear();
    this.prometheus.newGeneration(graph.nodes.map((n) => n.uid));
    this.refreshStateBytes();
  }

  /** The checkpoint or savepoint the generation restores from, until a newer completes. */
  setRestored(dir: string, metadata: CheckpointMetadata): void {
    if (this.latest && this.latest.metadata.checkpointId > metadata.checkpointId) return;
    this.latest = { dir, metadata };
    this.refreshStateBytes();
  }

  /** The job restarted after a failure: its subtasks count from zero again. */
  onRestart(): void {
    this.restartCount++;
    this.subtasks.clear();
    this.prometheus.restarted();
  }

  onRescaled(report: RescaleReport, at = Date.now()): void {
    this.rescale = {
      at: new Date(at).toISOString(),
      fromParallelism: report.fromParallelism,
      toParallelism: report.toParallelism,
      operators: report.operators,
      pauseMs: report.pauseMs,
      bytesRead: report.bytesRead,
      keyGroups: report.keyGroups,
      savepoint: report.savepoint,
    };
    this.prometheus.rescaled(report.pauseMs);
  }

  /** One consistent sample of every subtask (`RunOptions.onMetrics`). */
  onMetrics(reports: readonly SubtaskMetricsReport[], now = performance.now()): void {
    const graph = this.graph;
    if (!graph) return;
    this.metricsTime = Date.now();
    for (const r of reports) {
      const node = graph.nodes[r.nodeId];
      if (!node) continue;
      const key = subtaskKey(node.uid, r.subtaskIndex);
      let s = this.subtasks.get(key);
      if (!s) {
        s = { worker: null, watermark: null, samples: [] };
        this.subtasks.set(key, s);
      }
      const v = r.values;
      const sample: Sample = {
        at: now,
        recordsIn: v.recordsIn ?? 0,
        recordsOut: v.recordsOut ?? 0,
        backpressuredMs: v.backpressuredMs ?? 0,
      };
      const last = s.samples[s.samples.length - 1];
      // Counts that went down belong to a new attempt: measure from this sample on.
      if (last && (sample.recordsIn < last.recordsIn || sample.recordsOut < last.recordsOut)) {
        s.samples = [];
      }
      s.samples.push(sample);
      while (s.samples.length > 2 && now - s.samples[1]!.at >= RATE_WINDOW_MS) s.samples.shift();
      s.worker = r.worker ?? s.worker;
      s.watermark = v.watermark ?? null;
      const rates = ratesOf(s.samples);
      this.prometheus.subtask(node.uid, r.subtaskIndex, {
        recordsIn: sample.recordsIn,
        recordsOut: sample.recordsOut,
        backpressure: rates.backpressure,
        watermark: s.watermark,
      });
    }
  }

  /**
   * A completed checkpoint or savepoint. Its sizes come from its `_metadata`, read by
   * `refresh` when the API or /metrics asks, not here: the master's thread does not parse
   * metadata that nobody looks at.
   */
  onCheckpoint(stats: CheckpointStats): void {
    this.counts.completed++;
    this.push({
      id: stats.checkpointId,
      kind: stats.savepoint ? 'savepoint' : 'checkpoint',
      status: 'completed',
      triggerTime: new Date(stats.triggeredAt ?? Date.now() - stats.totalMs).toISOString(),
      durationMs: round(stats.totalMs),
      syncMs: round(stats.syncMs),
      asyncMs: round(stats.asyncMs),
      bytes: stats.bytes,
      path: stats.dir,
    });
    this.prometheus.checkpointCompleted(stats);
    if ((this.latest?.metadata.checkpointId ?? -1) < stats.checkpointId) {
      this.unread = { dir: stats.dir, checkpointId: stats.checkpointId };
    }
  }

  /** Reads the `_metadata` of the latest completed snapshot, if not read yet. */
  refresh(): Promise<void> {
    this.reading ??= (async () => {
      while (this.unread) {
        const next = this.unread;
        this.unread = undefined;
        try {
          const metadata = await this.readMetadata(next.dir);
          if ((this.latest?.metadata.checkpointId ?? -1) < metadata.checkpointId) {
            this.latest = { dir: next.dir, metadata };
            this.refreshStateBytes();
          }
        } catch {
          // Deleted by retention meanwhile (newer ones completed): the next one is measured.
        }
      }
    })().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  onCheckpointFailed(f: CheckpointFailure): void {
    this.counts.failed++;
    this.push({
      id: f.checkpointId,
      kind: f.savepoint ? 'savepoint' : 'checkpoint',
      status: 'failed',
      triggerTime: new Date(f.triggeredAt).toISOString(),
      durationMs: Math.max(0, f.failedAt - f.triggeredAt),
      syncMs: null,
      asyncMs: null,
      bytes: null,
      path: null,
      cause: f.cause,
    });
    this.prometheus.checkpointFailed(f.savepoint);
  }

  get restarts(): number {
    return this.restartCount;
  }

  get lastRescale(): RescaleView | null {
    return this.rescale ?? null;
  }

  /** The latest completed checkpoint or savepoint read so far (`refresh` first). */
  latestSnapshot(): LatestSnapshot | undefined {
    return this.latest;
  }

  /** When the last metrics sample arrived (ISO), or null. */
  sampledAt(): string | null {
    return this.metricsTime === undefined ? null : new Date(this.metricsTime).toISOString();
  }

  vertices(): VertexView[] {
    const graph = this.graph;
    if (!graph) return [];
    return graph.nodes.map((node) => this.vertex(graph, node));
  }

  edges(): EdgeView[] {
    const graph = this.graph;
    if (!graph) return [];
    return graph.edges.map((e) => ({
      from: graph.nodes[e.source]!.uid,
      to: graph.nodes[e.target]!.uid,
      partitioning: e.partitioning.kind,
      ...(e.sideOutput === undefined ? {} : { sideOutput: e.sideOutput }),
    }));
  }

  maxParallelism(): number {
    return Math.max(0, ...(this.graph?.nodes.map((n) => n.maxParallelism) ?? []));
  }

  checkpoints(): CheckpointHistory {
    const history = [...this.history].reverse();
    return {
      counts: { ...this.counts },
      history,
      latestCompleted: history.find((c) => c.status === 'completed') ?? null,
      latestFailure: history.find((c) => c.status === 'failed') ?? null,
    };
  }

  keyGroups(): KeyGroupBytes {
    const latest = this.latest;
    if (!latest) return { checkpointId: null, path: null, operators: [] };
    return {
      checkpointId: latest.metadata.checkpointId,
      path: latest.dir,
      operators: latest.metadata.operators
        .filter((o) => o.subtasks.some((s) => s.keyed !== undefined))
        .map((o) => ({
          uid: o.uid,
          name: o.name,
          maxParallelism: o.maxParallelism,
          parallelism: o.parallelism,
          bytes: keyGroupBytes(o),
        })),
    };
  }

  private vertex(graph: JobGraph, node: JobNode): VertexView {
    const keyed = node.kind === 'operator' && node.keySelector !== undefined;
    const subtasks = Array.from({ length: node.parallelism }, (_, index): SubtaskView => {
      const s = this.subtasks.get(subtaskKey(node.uid, index));
      const last = s?.samples[s.samples.length - 1];
      const rates = ratesOf(s?.samples ?? []);
      const range = keyed
        ? computeKeyGroupRange(node.maxParallelism, node.parallelism, index)
        : undefined;
      return {
        index,
        worker: s?.worker ?? null,
        recordsIn: last?.recordsIn ?? 0,
        recordsOut: last?.recordsOut ?? 0,
        recordsInPerSecond: rates.recordsIn,
        recordsOutPerSecond: rates.recordsOut,
        backpressure: rates.backpressure,
        watermark: s?.watermark ?? null,
        keyGroupRange: range ? [range.start, range.end] : null,
        stateBytes: this.stateBytes.get(subtaskKey(node.uid, index)) ?? null,
      };
    });
    const sum = (f: (s: SubtaskView) => number) => subtasks.reduce((n, s) => n + f(s), 0);
    const sizes = subtasks.map((s) => s.stateBytes);
    return {
      uid: node.uid,
      name: node.name,
      kind: kindOf(graph, node),
      parallelism: node.parallelism,
      maxParallelism: node.maxParallelism,
      keyed,
      recordsIn: sum((s) => s.recordsIn),
      recordsOut: sum((s) => s.recordsOut),
      recordsInPerSecond: round(sum((s) => s.recordsInPerSecond)),
      recordsOutPerSecond: round(sum((s) => s.recordsOutPerSecond)),
      backpressure: Math.max(0, ...subtasks.map((s) => s.backpressure)),
      stateBytes: sizes.some((b) => b === null) ? null : sizes.reduce((n, b) => n! + b!, 0),
      subtasks,
    };
  }

  private push(view: CheckpointView): void {
    this.history.push(view);
    if (this.history.length > HISTORY) this.history.shift();
  }

  /** Per-subtask sizes of the latest snapshot, where its parallelism is the running one. */
  private refreshStateBytes(): void {
    this.stateBytes.clear();
    const latest = this.latest;
    if (!latest || !this.graph) return;
    for (const node of this.graph.nodes) {
      const entry = latest.metadata.operators.find((o) => o.uid === node.uid);
      if (!entry || entry.parallelism !== node.parallelism) continue;
      for (let i = 0; i < node.parallelism; i++) {
        const s = entry.subtasks.find((x) => x.index === i);
        // Full or incremental: the bytes of its key groups' chains (base + deltas), what a
        // restore of the subtask reads, not what this checkpoint happened to write.
        const keyed = s?.keyed ? stateBytesOf(s.keyed) : 0;
        const opState =
          s?.operatorState?.states.reduce(
            (n, st) => n + st.elements.reduce((m, e) => m + e.length, 0),
            0,
          ) ?? 0;
        const bytes = keyed + opState;
        this.stateBytes.set(subtaskKey(node.uid, i), bytes);
        this.prometheus.stateBytes(node.uid, i, bytes);
      }
    }
  }
}

const subtaskKey = (uid: string, index: number) => `${uid}\u0000${index}`;

const round = (n: number) => Math.round(n * 10) / 10;

/** Rates over the window of samples (oldest to newest); zeros with fewer than two. */
const ratesOf = (
  samples: readonly Sample[],
): { recordsIn: number; recordsOut: number; backpressure: number } => {
  const first = samples[0];
  const last = samples[samples.length - 1];
  if (!first || !last || last.at <= first.at)
    return { recordsIn: 0, recordsOut: 0, backpressure: 0 };
  const ms = last.at - first.at;
  const perSecond = (d: number) => round((d * 1000) / ms);
  const blocked = (last.backpressuredMs - first.backpressuredMs) / ms;
  return {
    recordsIn: perSecond(last.recordsIn - first.recordsIn),
    recordsOut: perSecond(last.recordsOut - first.recordsOut),
    backpressure: Math.round(Math.min(1, Math.max(0, blocked)) * 1000) / 1000,
  };
};

/** Sinks are the operators `sinkTo` made; an operator nobody reads is still an operator. */
const kindOf = (_graph: JobGraph, node: JobNode): VertexKind =>
  node.kind === 'source' ? 'source' : node.sink !== undefined ? 'sink' : 'operator';

/** Per key group, the bytes of its chain (base + deltas; one block for a full handle). */
const keyGroupBytes = (entry: OperatorStateEntry): number[] => {
  const bytes = new Array<number>(entry.maxParallelism).fill(0);
  for (const s of entry.subtasks) {
    if (!s.keyed) continue;
    for (const c of chainsOf(s.keyed).chains) {
      if (c.keyGroup >= 0 && c.keyGroup < bytes.length) bytes[c.keyGroup]! += chainBytes(c);
    }
  }
  return bytes;
};
