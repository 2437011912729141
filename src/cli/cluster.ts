/**
 * The cluster commands: `eddy master`, `eddy worker`, `eddy cluster status`, `eddy run
 * --master` (submit and follow) and `eddy list|stop|savepoint|rescale --master`.
 */
import { resolve } from 'node:path';
import { importJob } from '../api/job.js';
import { bundleJob } from '../api/job-bundle.js';
import { latestRestorePoint } from '../checkpoint/index.js';
import {
  ClusterClient,
  ClusterMaster,
  type ClusterRescale,
  type ClusterStatus,
  clusterRescalesDir,
  HaStore,
  type JobEvent,
  parseAddress,
  type SubmitSpec,
  startHealthServer,
  WorkerProcess,
} from '../cluster/index.js';
import type { ClusterJob } from '../cluster/job.js';
import { eddyHome } from '../control/paths.js';
import { deserializeError, EddyError } from '../core/errors.js';
import { classifyLine, type JobLog, openJobLog } from './job-log.js';
import { ProgressLine } from './progress.js';
import { formatSummary } from './run.js';
import { jobStateDirs } from './state-dirs.js';

const err = (line: string) => process.stderr.write(`${line}\n`);

/**
 * The cluster's shared secret: EDDY_CLUSTER_TOKEN, for the master, its workers and clients
 * alike (an environment variable, not a flag: arguments are visible to other users).
 */
const clusterToken = (): string | undefined => process.env.EDDY_CLUSTER_TOKEN || undefined;

const connectClient = (master: string) => ClusterClient.connect(master, { token: clusterToken() });

/** Resolves on the first SIGINT or SIGTERM. */
const untilSignal = () =>
  new Promise<NodeJS.Signals>((r) => {
    process.once('SIGINT', () => r('SIGINT'));
    process.once('SIGTERM', () => r('SIGTERM'));
  });

export interface MasterCommandOptions {
  readonly port: number;
  readonly host?: string | undefined;
  readonly haDir?: string | undefined;
  readonly heartbeatTimeout?: number | undefined;
  readonly slotTimeout?: number | undefined;
  readonly healthPort?: number | undefined;
}

/** `eddy master`: serves until SIGINT/SIGTERM; jobs end with it (with --ha-dir they resume). */
export const masterCommand = async (o: MasterCommandOptions): Promise<number> => {
  const host = o.host ?? '127.0.0.1';
  const logs = new Map<string, Promise<JobLog | undefined>>();
  const jobLog = (job: ClusterJob, line: string, fields?: Record<string, unknown>) => {
    err(`[${job.name} ${job.id.slice(0, 8)}] ${line}`);
    if (!logs.has(job.id)) logs.set(job.id, openJobLog(job.id, job.name));
    void logs.get(job.id)!.then((l) => l?.write(line, { ...classifyLine(line), ...fields }));
  };
  const master = new ClusterMaster({
    host,
    port: o.port,
    heartbeat: heartbeat(o.heartbeatTimeout),
    slotTimeoutMs: o.slotTimeout,
    dataDir: resolve(eddyHome(), 'master'),
    ha: o.haDir ? new HaStore(o.haDir) : undefined,
    token: clusterToken(),
    jobLog,
  });
  const health =
    o.healthPort !== undefined
      ? await startHealthServer(
          host === '127.0.0.1' ? host : '0.0.0.0',
          o.healthPort,
          () => master.ready,
        )
      : undefined;
  await master.start();
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1' && !clusterToken())
    err(
      `warning: the cluster port on ${host} has no token: anyone who can reach it can run code on the workers; set EDDY_CLUSTER_TOKEN (the same for the master, workers and clients) or keep the port inside a private network`,
    );
  const signal = await untilSignal();
  err(
    `${signal}: the master stops${o.haDir ? `; its jobs resume when a master starts with --ha-dir ${o.haDir}` : ''}`,
  );
  await master.close();
  health?.close();
  for (const l of logs.values()) await (await l)?.close();
  // Jobs' restart timers and slot waits would keep the process alive: they end with it.
  process.exit(0);
};

export interface WorkerCommandOptions {
  readonly master: string;
  readonly slots: number;
  readonly host?: string | undefined;
  readonly id?: string | undefined;
  readonly healthPort?: number | undefined;
  readonly heartbeatTimeout?: number | undefined;
}

/** `eddy worker`: offers slots to the master until SIGINT/SIGTERM. */
export const workerCommand = async (o: WorkerCommandOptions): Promise<number> => {
  const { host, port } = parseAddress(o.master);
  const worker = new WorkerProcess({
    masterHost: host,
    masterPort: port,
    slots: o.slots,
    host: o.host ?? '127.0.0.1',
    id: o.id,
    heartbeat: heartbeat(o.heartbeatTimeout),
    token: clusterToken(),
  });
  const health =
    o.healthPort !== undefined
      ? await startHealthServer('0.0.0.0', o.healthPort, () => worker.registered)
      : undefined;
  void worker.start();
  const signal = await Promise.race([untilSignal(), worker.refusal]);
  err(`${signal}: worker ${worker.id} stops`);
  await worker.stop();
  health?.close();
  return 0;
};

/** The heartbeat timeout a flag asks for; pings go 5 times per timeout. */
const heartbeat = (timeoutMs: number | undefined) =>
  timeoutMs === undefined
    ? undefined
    : { timeoutMs, heartbeatMs: Math.max(50, Math.floor(timeoutMs / 5)) };

/** `eddy cluster status`: workers and jobs; with `--worker ID` exit 0 only if it is registered. */
export const clusterStatusCommand = async (o: {
  master: string;
  json?: boolean | undefined;
  worker?: string | undefined;
}): Promise<number> => {
  const client = await connectClient(o.master);
  try {
    const status = await client.request<ClusterStatus>({ kind: 'status' });
    if (o.json) process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
    else process.stdout.write(formatStatus(status));
    if (o.worker !== undefined && !status.workers.some((w) => w.id === o.worker)) {
      err(`worker ${o.worker} is not registered with the master at ${o.master}`);
      return 1;
    }
    return 0;
  } finally {
    client.close();
  }
};

const formatStatus = (s: ClusterStatus): string => {
  const lines = [
    `master ${s.master.address}${s.master.haDir ? ` (HA dir ${s.master.haDir})` : ''}`,
  ];
  lines.push(`${s.workers.length} worker(s):`);
  for (const w of s.workers)
    lines.push(`  ${w.id}  ${w.address}  slots ${w.slots}, free ${w.freeSlots}`);
  lines.push(`${s.jobs.length} job(s):`);
  for (const j of s.jobs) {
    lines.push(
      `  ${j.id}  ${j.name}  ${j.status}  parallelism ${j.parallelism}${j.reactive ? ' (reactive)' : ''}${j.restarts ? `, ${j.restarts} restart(s)` : ''}${j.error ? `: ${j.error}` : ''}`,
    );
    for (const r of j.rescales) lines.push(`    ${describeRescale(r)}`);
  }
  return `${lines.join('\n')}\n`;
};

const describeRescale = (r: ClusterRescale) =>
  `rescaled ${r.from} -> ${r.to} (${r.reason}) at ${new Date(r.at).toISOString()}: pause ${r.pauseMs} ms, ${r.keyGroups} key groups (${r.bytesRead} bytes) read`;

export interface SubmitOptions {
  readonly master: string;
  /** Default: the cluster's free slots. */
  readonly parallelism?: number | undefined;
  readonly maxParallelism?: number | undefined;
  readonly checkpointInterval?: number | undefined;
  readonly checkpointDir?: string | undefined;
  readonly stateDir?: string | undefined;
  readonly checkpointTimeout?: number | undefined;
  readonly checkpointMode?: 'full' | 'incremental' | undefined;
  readonly stateBackend?: 'heap' | 'disk' | undefined;
  readonly localStateDir?: string | undefined;
  readonly fromSavepoint?: string | undefined;
  readonly resume?: boolean | undefined;
  readonly allowNonRestoredState?: boolean | undefined;
  readonly restartAttempts?: number | undefined;
  readonly reactive?: boolean | undefined;
  readonly progress?: boolean | undefined;
  readonly jobId?: string | undefined;
  /** Submit, print the job id on stdout and exit; the job runs on. */
  readonly detach?: boolean | undefined;
}

/** How long `eddy run --master` tries to reach a master that went away (HA restarts). */
const RECONNECT_LIMIT_MS = 120_000;

/**
 * `eddy run job.ts --master H:P`: bundles the job, submits it and follows it like a local run
 * (log lines, progress, summary, exit code). Ctrl-C asks the cluster to stop the job; a second
 * Ctrl-C detaches (the job goes on stopping on the cluster).
 */
export const submitCommand = async (
  jobFile: string,
  jobArgs: readonly string[],
  o: SubmitOptions,
): Promise<number> => {
  const module = resolve(jobFile);
  const job = await importJob(module);
  const bundle = await bundleJob(module);
  for (const w of bundle.warnings) err(`warning: ${w}`);
  const dirs = jobStateDirs(job.name, o);
  const checkpointing =
    o.checkpointInterval !== undefined || o.checkpointDir !== undefined || o.resume || o.reactive;
  let spec: SubmitSpec = {
    name: job.name,
    bundle: { code: bundle.code, sha256: bundle.sha256 },
    args: jobArgs,
    parallelism: o.parallelism ?? 0,
    maxParallelism: o.maxParallelism,
    checkpointDir: checkpointing ? dirs.checkpoints : undefined,
    checkpointIntervalMs: o.checkpointInterval,
    checkpointTimeoutMs: o.checkpointTimeout,
    checkpointMode: o.checkpointMode,
    stateBackend: o.stateBackend,
    // A directory of each worker's host: given, as a path; else under each worker's $EDDY_HOME.
    localStateDir:
      o.localStateDir !== undefined || o.stateDir !== undefined ? dirs.local : undefined,
    reactive: o.reactive,
    restartAttempts: o.restartAttempts,
    fromSavepoint: o.fromSavepoint ? resolve(o.fromSavepoint) : undefined,
    resume: o.resume,
    allowNonRestoredState: o.allowNonRestoredState,
    jobId: o.jobId,
  };
  let client = await connectClient(o.master);
  if (o.parallelism === undefined) {
    // No -p: as many subtasks as the cluster has free slots (a local run takes the cores).
    const status = await client.request<ClusterStatus>({ kind: 'status' });
    const free = status.workers.reduce((n, w) => n + w.freeSlots, 0);
    spec = { ...spec, parallelism: Math.max(1, free) };
  }
  const { jobId } = await client.request<{ jobId: string }>({ kind: 'submit', spec });
  err(
    `job ${jobId} (${job.name}) submitted to ${o.master} (${(bundle.bytes / 1024).toFixed(0)} KiB bundle): eddy stop ${jobId} --master ${o.master} to stop it`,
  );
  if (o.detach) {
    // The job runs on without this process (e.g. a Kubernetes Job that submits and exits).
    process.stdout.write(`${jobId}\n`);
    client.close();
    return 0;
  }
  const started = performance.now();
  const tty = o.progress ?? Boolean(process.stderr.isTTY);
  const progress = tty ? new ProgressLine(process.stderr, job.name, jobId) : undefined;
  let interrupts = 0;
  let onSignal: () => void = () => {};
  const end = await new Promise<Extract<JobEvent, { kind: 'end' }> | undefined>(
    (resolveEnd, rejectEnd) => {
      const onEvent = (_: string, e: JobEvent) => {
        if (e.kind === 'log') {
          progress?.clear();
          err(e.line);
        } else if (e.kind === 'totals') progress?.update(e.totals);
        else resolveEnd(e);
      };
      const follow = async (c: ClusterClient) => {
        c.onEvent(onEvent);
        // Lost or closed by the master (it stops; with --ha-dir the next one resumes the job).
        c.onClose((error) => {
          void reconnect(
            error ??
              new EddyError('EDDY_CLUSTER', `the master at ${o.master} closed the connection`),
          );
        });
        await c.request({ kind: 'follow', jobId });
      };
      const reconnect = async (error: EddyError) => {
        progress?.clear();
        err(`${error.message}: reconnecting`);
        const deadline = Date.now() + RECONNECT_LIMIT_MS;
        for (let delay = 200; Date.now() < deadline; delay = Math.min(delay * 2, 5000)) {
          await new Promise((r) => setTimeout(r, delay));
          try {
            client = await connectClient(o.master);
          } catch {
            continue;
          }
          try {
            await follow(client);
            err(`reconnected to the master at ${o.master}`);
          } catch (e) {
            rejectEnd(
              new EddyError(
                'EDDY_CLUSTER',
                `the master at ${o.master} no longer knows job ${jobId} (${(e as Error).message}): it restarted without --ha-dir; eddy run … --resume recovers the job from its latest checkpoint`,
              ),
            );
          }
          return;
        }
        rejectEnd(
          new EddyError(
            'EDDY_CLUSTER',
            `lost the master at ${o.master} and could not reconnect within ${RECONNECT_LIMIT_MS} ms`,
          ),
        );
      };
      onSignal = () => {
        interrupts++;
        progress?.clear();
        if (interrupts === 1) {
          err('stopping: the cluster stops the job where its sources are (Ctrl-C again to detach)');
          client
            .request({ kind: 'stop', jobId })
            .catch((e: Error) => err(`could not stop: ${e.message}`));
        } else {
          err(
            `detached: job ${jobId} goes on stopping on the cluster (eddy cluster status --master ${o.master})`,
          );
          resolveEnd(undefined);
        }
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      follow(client).catch(rejectEnd);
    },
  ).finally(() => {
    progress?.clear();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    client.close();
  });
  if (!end) return 130;
  if (end.status === 'failed') throw deserializeError(end.error!);
  err(
    formatSummary({
      durationMs: performance.now() - started,
      stopped: end.status === 'stopped',
      totals: end.totals,
      restarts: end.restarts,
    }),
  );
  if (end.savepoint) process.stdout.write(`savepoint: ${end.savepoint}\n`);
  return 0;
};

/** `eddy stop|savepoint|rescale <jobId> --master H:P`. */
export const clusterControlCommand = async (
  master: string,
  action:
    | { kind: 'stop'; jobId: string; savepoint: boolean; dir?: string | undefined; drain: boolean }
    | { kind: 'savepoint'; jobId: string; dir?: string | undefined }
    | { kind: 'rescale'; jobId: string; parallelism: number },
): Promise<number> => {
  const client = await connectClient(master);
  try {
    if (action.kind === 'savepoint') {
      const { path } = await client.request<{ path: string }>({
        kind: 'savepoint',
        jobId: action.jobId,
        dir: action.dir ? resolve(action.dir) : undefined,
      });
      process.stdout.write(`${path}\n`);
      return 0;
    }
    if (action.kind === 'rescale') {
      err(`rescaling job ${action.jobId} to ${action.parallelism}`);
      const r = await client.request<ClusterRescale>({
        kind: 'rescale',
        jobId: action.jobId,
        parallelism: action.parallelism,
      });
      process.stdout.write(`${describeRescale(r)}\n`);
      return 0;
    }
    // Stop waits for the job's end, as a local stop does.
    const ended = new Promise<Extract<JobEvent, { kind: 'end' }>>((r) =>
      client.onEvent((_, e) => {
        if (e.kind === 'end') r(e);
      }),
    );
    await client.request({ kind: 'follow', jobId: action.jobId });
    const savepointDir = action.savepoint
      ? resolve(action.dir ?? (await jobSavepointDir(client, action.jobId)))
      : undefined;
    await client.request({ kind: 'stop', jobId: action.jobId, savepointDir, drain: action.drain });
    const end = await ended;
    if (end.status === 'failed') throw deserializeError(end.error!);
    if (action.savepoint) {
      if (!end.savepoint)
        throw new EddyError(
          'EDDY_JOB_CONTROL',
          `job ${action.jobId} stopped but reported no savepoint`,
        );
      process.stdout.write(`${end.savepoint}\n`);
    } else err(`stopped job ${action.jobId}`);
    return 0;
  } finally {
    client.close();
  }
};

/** `eddy inspect <jobId> --master`: the job's newest completed checkpoint or rescale savepoint. */
export const latestCheckpointOf = async (master: string, jobId: string): Promise<string> => {
  const client = await connectClient(master);
  try {
    const status = await client.request<ClusterStatus>({ kind: 'status' });
    const job = status.jobs.find((j) => j.id === jobId || j.id.startsWith(jobId));
    if (!job)
      throw new EddyError('EDDY_JOB_CONTROL', `no job ${jobId} on the cluster at ${master}`, {
        domain: 'user',
      });
    if (!job.checkpointDir)
      throw new EddyError(
        'EDDY_JOB_CONTROL',
        `job ${job.id} runs without checkpoints: nothing to inspect`,
        { domain: 'user' },
      );
    const { latest } = await latestRestorePoint(
      job.checkpointDir,
      clusterRescalesDir(job.checkpointDir),
    );
    if (!latest)
      throw new EddyError(
        'EDDY_JOB_CONTROL',
        `job ${job.id} has no completed checkpoint in ${job.checkpointDir} yet`,
        { domain: 'user' },
      );
    return latest.dir;
  } finally {
    client.close();
  }
};

const jobSavepointDir = async (client: ClusterClient, jobId: string): Promise<string> => {
  const status = await client.request<ClusterStatus>({ kind: 'status' });
  const job = status.jobs.find((j) => j.id === jobId || j.id.startsWith(jobId));
  if (!job?.checkpointDir)
    throw new EddyError(
      'EDDY_JOB_CONTROL',
      `job ${jobId} has no checkpoint directory: give --dir`,
      { domain: 'user' },
    );
  return `${job.checkpointDir}/savepoints`;
};

/** `eddy list --master`: the cluster's jobs. */
export const clusterListCommand = async (master: string, json: boolean): Promise<number> => {
  const client = await connectClient(master);
  try {
    const status = await client.request<ClusterStatus>({ kind: 'status' });
    if (json) process.stdout.write(`${JSON.stringify(status.jobs, null, 2)}\n`);
    else
      for (const j of status.jobs)
        process.stdout.write(`${j.id}  ${j.name}  ${j.status}  parallelism ${j.parallelism}\n`);
    return 0;
  } finally {
    client.close();
  }
};
