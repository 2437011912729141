/**
 * Wires a running `eddy run` into job control: a control socket plus a registry entry
 * under $EDDY_HOME, so `eddy list`, `eddy savepoint`, `eddy stop` and `eddy rescale` in other
 * shells reach it; and its HTTP server (REST API, /metrics, dashboard; docs/REST.md), whose
 * URL the registry entry records. One session spans the job's restarts (a rescale starts a
 * new master). The control socket and the REST API share one set of job controls.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobControl } from '../api/job.js';
import { type JobControlSession, openJobControlSession } from '../control/index.js';
import type { JobControlTarget } from '../control/types.js';
import { EddyError, InvalidArgumentError } from '../core/errors.js';
import {
  checkUiAccess,
  JobMonitor,
  type RestJob,
  type RestServer,
  startRestServer,
} from '../server/index.js';
import type { RunCommandOptions, RunControls } from './run.js';

type Hooks = Pick<RunCommandOptions, 'jobId' | 'onStarted' | 'onEnded' | 'onCancelled' | 'observe'>;

/** `eddy run --ui-host/--ui-port/--ui-token` (`--no-ui`: enabled false). */
export interface UiOptions {
  readonly enabled: boolean;
  /** Default 127.0.0.1; another address needs `token`. */
  readonly host?: string | undefined;
  /** Default 8081 (the next free one if taken); 0: any free port. */
  readonly port?: number | undefined;
  readonly token?: string | undefined;
  /** The built dashboard; default `dist/ui/` of this eddy. */
  readonly uiDir?: string | undefined;
}

/** Where scripts/build.mjs puts the dashboard: `dist/ui/`, from src/cli and dist/cli alike. */
export const DEFAULT_UI_DIR = fileURLToPath(new URL('../../dist/ui/', import.meta.url));

/**
 * The hooks of one `eddy run`. Checks the UI options first: a non-loopback `--ui-host`
 * without a token throws here, before the job starts.
 */
export const runHooks = (parallelism: number, ui: UiOptions = { enabled: false }): Hooks => {
  if (ui.enabled) {
    checkUiAccess(ui.host ?? '127.0.0.1', ui.token);
    if (ui.port !== undefined && (!Number.isInteger(ui.port) || ui.port < 0 || ui.port > 65535)) {
      throw new InvalidArgumentError(
        `--ui-port must be 0 (any free port) to 65535, got ${ui.port}`,
      );
    }
  }
  const jobId = randomUUID();
  const startTime = new Date().toISOString();
  let session: Promise<JobControlSession | undefined> | undefined;
  let settled: JobControlSession | undefined;
  let master: JobControl | undefined;
  let controls: RunControls | undefined;
  let monitor: JobMonitor | undefined;
  let rest: Promise<RestServer | undefined> | undefined;
  let stopping = false;
  let rescaling = false;
  let stopped:
    | { resolve: (p: string | undefined) => void; reject: (e: unknown) => void }
    | undefined;
  const stopResult = new Promise<string | undefined>((res, rej) => {
    stopped = { resolve: res, reject: rej };
  });
  stopResult.catch(() => {});
  const starting = () => new EddyError('EDDY_JOB_CONTROL', 'the job is still starting');
  const defaultDir = () => {
    if (!controls) throw starting();
    return controls.savepointDir();
  };
  let entry: ReturnType<JobControlSession['entry']> | undefined;
  // The job's controls, for the control socket and the REST API alike.
  const target: JobControlTarget = {
    status: () => {
      if (!entry || !controls) throw starting();
      return {
        ...entry,
        parallelism: controls.parallelism(),
        status: stopping ? 'stopping' : 'running',
      };
    },
    async savepoint(dir) {
      if (!master) throw starting();
      const path = await master.savepoint(resolve(dir ?? defaultDir()));
      (await session)?.update({ lastSavepoint: path });
      return path;
    },
    async stop(savepoint, dir, drain) {
      const where = savepoint ? resolve(dir ?? defaultDir()) : undefined;
      stopping = true;
      (await session)?.update({ status: 'stopping' });
      master?.stop(where, { drain });
      return stopResult;
    },
    async rescale(p, operators) {
      if (!controls) throw starting();
      if (rescaling) throw new EddyError('EDDY_JOB_CONTROL', 'a rescale is already in progress');
      rescaling = true;
      try {
        const report = await controls.rescale(p, operators);
        if ('unchanged' in report) return report;
        (await session)?.update({
          parallelism: report.toParallelism,
          lastSavepoint: report.savepoint,
        });
        return report;
      } finally {
        rescaling = false;
      }
    },
  };
  const restJob = (m: JobMonitor, name: string): RestJob => ({
    id: jobId,
    name,
    monitor: m,
    state: () => ({
      status: stopping ? 'stopping' : 'running',
      parallelism: controls?.parallelism() ?? parallelism,
      startTime,
      rescaling,
    }),
    savepoint: (dir) => target.savepoint(dir),
    stop: (savepoint, dir, drain) => target.stop(savepoint, dir, drain),
    rescale: (p, operators) => target.rescale(p, operators),
    rescalePlan: (p, operators) => rescalePlan(m, p, operators),
  });
  const open = (name: string, checkpointDir: string | undefined) => {
    const s = (async () => {
      const server = await rest;
      return openJobControlSession({
        id: jobId,
        name,
        parallelism,
        checkpointDir,
        url: server?.url,
        startedAt: startTime,
        target,
      });
    })().catch((e) => {
      process.stderr.write(`job control unavailable: ${(e as Error).message}\n`);
      return undefined;
    });
    void s.then((x) => {
      entry = x?.entry();
      settled = x;
    });
    return s;
  };
  const closeRest = () => {
    void rest?.then((r) => r?.close());
  };
  return {
    jobId,
    observe(name) {
      monitor = new JobMonitor(jobId, name);
      if (ui.enabled) {
        const m = monitor;
        rest = startRestServer({
          host: ui.host,
          port: ui.port,
          token: ui.token,
          uiDir: ui.uiDir ?? DEFAULT_UI_DIR,
          jobs: () => [restJob(m, name)],
        }).then(
          (server) => {
            process.stderr.write(`dashboard and REST API: ${server.url}\n`);
            return server;
          },
          (e: Error) => {
            process.stderr.write(`REST API and dashboard unavailable: ${e.message}\n`);
            return undefined;
          },
        );
      }
      return monitor;
    },
    onStarted(m, name, checkpointDir, c) {
      master = m;
      controls = c;
      session ??= open(name, checkpointDir);
    },
    onCancelled() {
      // Synchronous: the process exits right after. A session still opening is left to the
      // registry's crash detection.
      settled?.cancel();
    },
    onEnded(result, error) {
      if (error) stopped?.reject(error);
      else stopped?.resolve(result?.savepoint);
      if (!session) return closeRest();
      void session
        .then((s) =>
          s?.end(error ? 'failed' : result?.stopped ? 'stopped' : 'finished', {
            lastSavepoint: result?.savepoint,
            // Its server closes with it: a later job may get the same port.
            url: undefined,
          }),
        )
        .finally(closeRest);
    },
  };
};

/**
 * `eddy inspect --plan --json` of the latest completed checkpoint or savepoint: with only a
 * parallelism exactly `--plan N`; with per-operator values, the others at `parallelism` or,
 * without it, at the parallelism they run at now.
 */
export const rescalePlan = async (
  monitor: JobMonitor,
  parallelism: number | undefined,
  operators: Readonly<Record<string, number>>,
): Promise<unknown> => {
  await monitor.refresh();
  const latest = monitor.latestSnapshot();
  if (!latest) {
    throw new EddyError(
      'EDDY_JOB_CONTROL',
      'no completed checkpoint or savepoint yet to plan from: run the job with --checkpoint-interval, or take a savepoint first',
      { domain: 'user' },
    );
  }
  const { describeCheckpoint } = await import('./inspect.js');
  const uids = latest.metadata.operators.map((o) => o.uid);
  for (const uid of Object.keys(operators)) {
    if (!uids.includes(uid)) {
      throw new InvalidArgumentError(
        `operator '${uid}' has no state in checkpoint ${latest.metadata.checkpointId}; its operators are ${uids.join(', ')}`,
      );
    }
  }
  if (Object.keys(operators).length === 0) {
    return describeCheckpoint(latest.dir, latest.metadata, parallelism);
  }
  const running = new Map(monitor.vertices().map((v) => [v.uid, v.parallelism]));
  const plan = new Map(
    latest.metadata.operators.map((o) => [
      o.uid,
      operators[o.uid] ?? parallelism ?? running.get(o.uid) ?? o.parallelism,
    ]),
  );
  return describeCheckpoint(latest.dir, latest.metadata, plan);
};
