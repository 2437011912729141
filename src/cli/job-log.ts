/**
 * The structured log of one `eddy run`: JSON lines (pino) in `$EDDY_HOME/logs/<job id>.log`,
 * beside the human lines `eddy run` prints to stderr, which stay as they are. Each line has
 * `level` (label), `time` (ISO 8601), `pid`, `jobId`, `jobName`, `event` (see JOB_LOG_EVENTS),
 * the event's fields and `msg`: the human line. `eddy logs` (logs.ts) prints the file.
 *
 * Only the job's main thread writes it: worker threads report failures, declines and restore
 * statistics to the master, which logs them here. Lines are written synchronously (pino's
 * `sync: true` destination): a job logs a few lines per checkpoint, rescale or failure, and an
 * asynchronous destination could not guarantee a line on an exit path: its `flushSync` skips a
 * write already in flight in the thread pool, which `process.exit` then abandons (seen as a
 * line missing right after `flushSync()` on a loaded machine). `flushSync()` stays for exit
 * paths (a second Ctrl-C) and is then a no-op.
 */
import { once } from 'node:events';
import { join } from 'node:path';
import { type Logger, pino } from 'pino';
import { eddyHome } from '../control/paths.js';
import type { RescaleReport } from '../control/types.js';
import { EddyError } from '../core/errors.js';
import type { CheckpointStats } from '../runtime/job-master.js';
import type { RestoreStats } from '../runtime/protocol.js';

/** Levels a job log line may have. */
export type JobLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** One event's structured fields; `event` names it (see JOB_LOG_EVENTS). */
export interface JobLogFields {
  readonly event: string;
  readonly [field: string]: unknown;
}

/** The events a job log holds, with their level. */
export const JOB_LOG_EVENTS = {
  /** parallelism, maxParallelism, workers, module, args, checkpointIntervalMs, restore flags. */
  'job-start': 'info',
  /** First Ctrl-C (or SIGTERM): signal. */
  'stop-requested': 'info',
  /** checkpointId, bytes, ms, syncMs, asyncMs, dir. */
  checkpoint: 'info',
  /** As checkpoint. */
  savepoint: 'info',
  /** checkpointId, savepoint, cause. */
  'checkpoint-failed': 'warn',
  /** checkpointId, savepoint: completed after its attempt had failed. */
  'checkpoint-orphaned': 'warn',
  /** dir, cause: a checkpoint skipped when looking for the latest valid one. */
  'checkpoint-skipped': 'warn',
  /** cause, restart (count), delayMs, fromCheckpoint (null: from the beginning). */
  restart: 'warn',
  /** bytesRead, keyGroups, ms, subtasks: state read by all workers on a (re)start. */
  restored: 'info',
  /** uid, subtask, keyGroups: one restored subtask (the human line). */
  'restored-subtask': 'debug',
  /** threads, or savepointDir once the job is being stopped for the rescale. */
  'rescale-prepare': 'info',
  /** fromParallelism, toParallelism, operators, pauseMs, prepareMs, bytesRead, keyGroups, restoreMs, savepoint. */
  rescale: 'info',
  /** reason; the job runs on unchanged. */
  'rescale-refused': 'warn',
  /** The requested parallelism is the current one. */
  'rescale-unchanged': 'info',
  /** savepoint: the job stopped for a rescale but did not start again. */
  'rescale-failed': 'error',
  /** status (finished/stopped), durationMs, recordsIn, recordsOut, deadLetters, restarts, savepoint. */
  'job-end': 'info',
  /** error, code: the job ended with an error. */
  'job-failed': 'error',
  /** lastCheckpoint: a second Ctrl-C aborted the stop. */
  'job-cancelled': 'warn',
  /** Any other line (warnings of the job build, retention problems, traces). */
  message: 'info',
} as const satisfies Record<string, JobLogLevel>;

/** Events after which a job writes nothing more to its log. */
export const FINAL_JOB_LOG_EVENTS: ReadonlySet<string> = new Set([
  'job-end',
  'job-failed',
  'job-cancelled',
]);

/** `<home>/logs`: one log file per job. */
export const jobLogsDir = (home: string): string => join(home, 'logs');

/** `<home>/logs/<job id>.log` */
export const jobLogPath = (home: string, jobId: string): string =>
  join(jobLogsDir(home), `${jobId}.log`);

/** The structured log of one job (main thread only). */
export class JobLog {
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly logger: Logger,
    private readonly dest: ReturnType<typeof pino.destination>,
  ) {}

  /** Creates `<home>/logs/` and opens (appends to) the job's log file. */
  static async open(o: { jobId: string; jobName: string; home?: string }): Promise<JobLog> {
    const path = jobLogPath(o.home ?? eddyHome(), o.jobId);
    const dest = pino.destination({ dest: path, sync: true, mkdir: true });
    // Until the file is open a synchronous flush (on process.exit) throws: wait for it.
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => {
        dest.off('ready', onReady);
        reject(e);
      };
      const onReady = () => {
        dest.off('error', onError);
        resolve();
      };
      dest.once('ready', onReady);
      dest.once('error', onError);
    });
    const logger = pino(
      {
        base: { pid: process.pid, jobId: o.jobId, jobName: o.jobName },
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        level: 'debug',
      },
      dest,
    );
    const log = new JobLog(path, logger, dest);
    // A write error (a full disk) must not crash the job: the log stops, once, with a warning.
    dest.on('error', (e: Error) => {
      if (log.closed) return;
      log.closed = true;
      process.stderr.write(`warning: the job log ${path} stopped: ${e.message}\n`);
    });
    return log;
  }

  /**
   * Writes one event; `msg` is the human line. Without fields the line is one of the job
   * master's (which speaks in lines) and its event is recognized from its text.
   */
  write(msg: string, fields?: JobLogFields, level?: JobLogLevel): void {
    if (this.closed) return;
    const f = fields ?? classifyLine(msg);
    this.logger[level ?? levelOf(f.event)](f, msg);
  }

  /** The job failed: logs why and closes the log. */
  async failed(error: unknown): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    const code = error instanceof EddyError ? error.code : 'EDDY_INTERNAL';
    this.write(`job failed: ${message}`, { event: 'job-failed', error: message, code });
    await this.close();
  }

  /** Writes everything buffered now (for exit paths: the process ends right after). */
  flushSync(): void {
    if (this.closed) return;
    try {
      this.dest.flushSync();
    } catch {
      // Not open yet or already destroyed: nothing can be written any more anyway.
    }
  }

  /** Flushes and closes the file; later writes are dropped. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closed = once(this.dest, 'close');
    this.dest.end();
    await closed;
  }
}

/**
 * Opens the job's log; if that fails, the job runs on without one and says so once on stderr
 * (a full disk or an unwritable $EDDY_HOME must not stop a job).
 */
export const openJobLog = async (jobId: string, jobName: string): Promise<JobLog | undefined> => {
  try {
    return await JobLog.open({ jobId, jobName });
  } catch (e) {
    process.stderr.write(
      `warning: no job log: cannot write ${jobLogPath(eddyHome(), jobId)}: ${(e as Error).message}\n`,
    );
    return undefined;
  }
};

const levelOf = (event: string): JobLogLevel =>
  (JOB_LOG_EVENTS as Record<string, JobLogLevel>)[event] ?? 'info';

const num = (s: string | undefined): number | undefined =>
  s === undefined ? undefined : Number(s);

/**
 * The event of a line of the job master (`runtime/job-master.ts`, which logs human lines
 * only). Hazard: these patterns follow its messages; a line no pattern knows is a `message`.
 */
export const classifyLine = (line: string): JobLogFields => {
  let m =
    /^job failed: ([\s\S]*)\nrestarting from (?:checkpoint (\d+)|the beginning) in (\d+) ms \(restart (\d+)\)$/.exec(
      line,
    );
  if (m) {
    return {
      event: 'restart',
      cause: m[1],
      restart: num(m[4]),
      delayMs: num(m[3]),
      fromCheckpoint: num(m[2]) ?? null,
    };
  }
  m = /^(checkpoint|savepoint) (\d+) failed: ([\s\S]*)$/.exec(line);
  if (m) {
    return {
      event: 'checkpoint-failed',
      checkpointId: num(m[2]),
      savepoint: m[1] === 'savepoint',
      cause: m[3],
    };
  }
  m = /^internal error while committing checkpoint (\d+): ([\s\S]*)$/.exec(line);
  if (m) {
    return { event: 'checkpoint-failed', checkpointId: num(m[1]), savepoint: false, cause: m[2] };
  }
  m = /^(checkpoint|savepoint) (\d+) completed after its attempt failed/.exec(line);
  if (m) {
    return {
      event: 'checkpoint-orphaned',
      checkpointId: num(m[2]),
      savepoint: m[1] === 'savepoint',
    };
  }
  m = /^skipping checkpoint (\S+): ([\s\S]*)$/.exec(line);
  if (m) return { event: 'checkpoint-skipped', dir: m[1], cause: m[2] };
  m = /^restored (.+)\[(\d+)\]: (\d+) key groups/.exec(line);
  if (m) {
    return { event: 'restored-subtask', uid: m[1], subtask: num(m[2]), keyGroups: num(m[3]) };
  }
  m = /^rescaling: starting (\d+) worker thread/.exec(line);
  if (m) return { event: 'rescale-prepare', threads: num(m[1]) };
  m = /^rescaling: stopping with a savepoint in (.+)$/.exec(line);
  if (m) return { event: 'rescale-prepare', savepointDir: m[1] };
  m = /^rescale refused, the job runs on unchanged: ([\s\S]*)$/.exec(line);
  if (m) return { event: 'rescale-refused', reason: m[1] };
  if (line.startsWith('rescale: nothing to do')) return { event: 'rescale-unchanged' };
  m = /^rescale failed after the job stopped; its state is in the savepoint (\S+)/.exec(line);
  if (m) return { event: 'rescale-failed', savepoint: m[1] };
  return { event: 'message' };
};

/** Fields of a completed checkpoint or savepoint. */
export const checkpointFields = (s: CheckpointStats): JobLogFields => ({
  event: s.savepoint ? 'savepoint' : 'checkpoint',
  checkpointId: s.checkpointId,
  bytes: s.bytes,
  ms: Math.round(s.totalMs),
  syncMs: round1(s.syncMs),
  asyncMs: Math.round(s.asyncMs),
  dir: s.dir,
});

/** Fields of the state all workers read on a (re)start. */
export const restoredFields = (s: RestoreStats): JobLogFields => ({
  event: 'restored',
  bytesRead: s.bytesRead,
  keyGroups: s.keyGroups,
  ms: Math.round(s.ms),
  subtasks: s.operators.length,
});

/** Fields of a completed rescale. */
export const rescaleFields = (r: RescaleReport): JobLogFields => ({
  event: 'rescale',
  fromParallelism: r.fromParallelism,
  toParallelism: r.toParallelism,
  operators: r.operators,
  pauseMs: Math.round(r.pauseMs),
  prepareMs: Math.round(r.prepareMs),
  bytesRead: r.bytesRead,
  keyGroups: r.keyGroups,
  restoreMs: Math.round(r.restoreMs),
  savepoint: r.savepoint,
});

/** Fields of the end of a run that did not fail. */
export const jobEndFields = (s: {
  readonly durationMs: number;
  readonly stopped: boolean;
  readonly totals: { recordsIn: number; recordsOut: number; deadLetters: number };
  readonly restarts: number;
  readonly savepoint: string | undefined;
}): JobLogFields => ({
  event: 'job-end',
  status: s.stopped ? 'stopped' : 'finished',
  durationMs: Math.round(s.durationMs),
  recordsIn: s.totals.recordsIn,
  recordsOut: s.totals.recordsOut,
  deadLetters: s.totals.deadLetters,
  restarts: s.restarts,
  savepoint: s.savepoint ?? null,
});

const round1 = (n: number) => Math.round(n * 10) / 10;
