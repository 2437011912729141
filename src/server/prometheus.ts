/**
 * One job's Prometheus metrics (`GET /metrics`), in a prom-client Registry of its own. Names
 * start with `eddy_`; every series has the label `job` (the job's name) and `job_id`; per
 * subtask also `operator` (the operator's uid) and `subtask` (its index).
 *
 * Record counters are monotonic over the whole `eddy run`: the workers' counts start from zero
 * in each attempt and generation (restart, rescale), so the counters add what each sample
 * added since the previous one of the same attempt.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CheckpointStats } from '../runtime/job-master.js';

const SUBTASK_LABELS = ['job', 'job_id', 'operator', 'subtask'] as const;
const JOB_LABELS = ['job', 'job_id'] as const;

export interface SubtaskSample {
  readonly recordsIn: number;
  readonly recordsOut: number;
  readonly backpressure: number;
  /** Epoch ms, or null without event time. */
  readonly watermark: number | null;
}

export class JobPrometheus {
  readonly registry = new Registry();
  private readonly job: { job: string; job_id: string };
  /** Last counts seen per subtask in the current attempt, to add differences. */
  private readonly seen = new Map<string, { recordsIn: number; recordsOut: number }>();
  private readonly recordsIn: Counter<(typeof SUBTASK_LABELS)[number]>;
  private readonly recordsOut: Counter<(typeof SUBTASK_LABELS)[number]>;
  private readonly backpressure: Gauge<(typeof SUBTASK_LABELS)[number]>;
  private readonly watermarkLag: Gauge<(typeof SUBTASK_LABELS)[number]>;
  private readonly state: Gauge<(typeof SUBTASK_LABELS)[number]>;
  private readonly checkpoints: Counter<'job' | 'job_id' | 'kind'>;
  private readonly checkpointFailures: Counter<'job' | 'job_id' | 'kind'>;
  private readonly checkpointDuration: Histogram<'job' | 'job_id'>;
  private readonly checkpointSize: Gauge<'job' | 'job_id'>;
  private readonly restarts: Counter<'job' | 'job_id'>;
  private readonly rescales: Counter<'job' | 'job_id'>;
  private readonly rescalePause: Gauge<'job' | 'job_id'>;

  constructor(jobName: string, jobId: string) {
    this.job = { job: jobName, job_id: jobId };
    const registers = [this.registry];
    const perSubtask = { labelNames: SUBTASK_LABELS, registers };
    const perJob = { labelNames: JOB_LABELS, registers };
    this.recordsIn = new Counter({
      name: 'eddy_records_in_total',
      help: 'Records an operator subtask received (sources: none; they emit)',
      ...perSubtask,
    });
    this.recordsOut = new Counter({
      name: 'eddy_records_out_total',
      help: 'Records an operator subtask emitted downstream (a sink writes what it receives: see its eddy_records_in_total)',
      ...perSubtask,
    });
    this.backpressure = new Gauge({
      name: 'eddy_backpressure_ratio',
      help: 'Fraction (0-1) of the last ~2 s a subtask spent blocked waiting for output credit',
      ...perSubtask,
    });
    this.watermarkLag = new Gauge({
      name: 'eddy_watermark_lag_seconds',
      help: 'Wall clock minus the event-time watermark of a subtask (only with event time)',
      ...perSubtask,
    });
    this.state = new Gauge({
      name: 'eddy_state_bytes',
      help: "Bytes of a subtask's state in the latest completed checkpoint or savepoint",
      ...perSubtask,
    });
    this.checkpoints = new Counter({
      name: 'eddy_checkpoints_completed_total',
      help: 'Completed checkpoints and savepoints',
      labelNames: ['job', 'job_id', 'kind'],
      registers,
    });
    this.checkpointFailures = new Counter({
      name: 'eddy_checkpoints_failed_total',
      help: 'Checkpoints and savepoints declined, timed out or failed to commit',
      labelNames: ['job', 'job_id', 'kind'],
      registers,
    });
    this.checkpointDuration = new Histogram({
      name: 'eddy_checkpoint_duration_seconds',
      help: 'From trigger to committed _metadata, per completed checkpoint or savepoint',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      ...perJob,
    });
    this.checkpointSize = new Gauge({
      name: 'eddy_checkpoint_size_bytes',
      help: 'Bytes written by the latest completed checkpoint or savepoint',
      ...perJob,
    });
    this.restarts = new Counter({
      name: 'eddy_restarts_total',
      help: 'Restarts after failures',
      ...perJob,
    });
    this.rescales = new Counter({
      name: 'eddy_rescales_total',
      help: 'Completed rescales',
      ...perJob,
    });
    this.rescalePause = new Gauge({
      name: 'eddy_last_rescale_pause_seconds',
      help: 'Pause of the latest rescale: from the stop to the first record after the restore',
      ...perJob,
    });
    // Present from the start (at 0), so that rate() and alerts see them before the first event.
    for (const kind of ['checkpoint', 'savepoint']) {
      this.checkpoints.inc({ ...this.job, kind }, 0);
      this.checkpointFailures.inc({ ...this.job, kind }, 0);
    }
    this.restarts.inc(this.job, 0);
    this.rescales.inc(this.job, 0);
  }

  /** A new generation (start, rescale): gauges of subtasks that may be gone are dropped. */
  newGeneration(_uids: readonly string[]): void {
    this.seen.clear();
    this.backpressure.reset();
    this.watermarkLag.reset();
    this.state.reset();
  }

  restarted(): void {
    this.seen.clear();
    this.restarts.inc(this.job);
  }

  subtask(uid: string, index: number, s: SubtaskSample, now = Date.now()): void {
    const labels = { ...this.job, operator: uid, subtask: String(index) };
    const key = `${uid}\u0000${index}`;
    const last = this.seen.get(key);
    // A count below the last one: a new attempt counting from zero.
    const added = (v: number, prev: number | undefined) =>
      prev === undefined || v < prev ? v : v - prev;
    this.recordsIn.inc(labels, added(s.recordsIn, last?.recordsIn));
    this.recordsOut.inc(labels, added(s.recordsOut, last?.recordsOut));
    this.seen.set(key, { recordsIn: s.recordsIn, recordsOut: s.recordsOut });
    this.backpressure.set(labels, s.backpressure);
    if (s.watermark !== null) this.watermarkLag.set(labels, (now - s.watermark) / 1000);
  }

  stateBytes(uid: string, index: number, bytes: number): void {
    this.state.set({ ...this.job, operator: uid, subtask: String(index) }, bytes);
  }

  checkpointCompleted(stats: CheckpointStats): void {
    this.checkpoints.inc({ ...this.job, kind: stats.savepoint ? 'savepoint' : 'checkpoint' });
    this.checkpointDuration.observe(this.job, stats.totalMs / 1000);
    this.checkpointSize.set(this.job, stats.bytes);
  }

  checkpointFailed(savepoint: boolean): void {
    this.checkpointFailures.inc({ ...this.job, kind: savepoint ? 'savepoint' : 'checkpoint' });
  }

  rescaled(pauseMs: number): void {
    this.rescales.inc(this.job);
    this.rescalePause.set(this.job, pauseMs / 1000);
  }

  /** The text exposition format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
