/**
 * Wires a running `eddy run` into job control: a control socket plus a registry entry
 * under $EDDY_HOME, so `eddy list`, `eddy savepoint`, `eddy stop` and `eddy rescale` in other
 * shells reach it. One session spans the job's restarts (a rescale starts a new master).
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type { JobControl } from '../api/job.js';
import { type JobControlSession, openJobControlSession } from '../control/index.js';
import { EddyError } from '../core/errors.js';
import type { RunCommandOptions, RunControls } from './run.js';

type Hooks = Pick<RunCommandOptions, 'jobId' | 'onStarted' | 'onEnded' | 'onCancelled'>;

export const runHooks = (parallelism: number): Hooks => {
  const jobId = randomUUID();
  let session: Promise<JobControlSession | undefined> | undefined;
  let settled: JobControlSession | undefined;
  let master: JobControl | undefined;
  let stopping = false;
  let stopped:
    | { resolve: (p: string | undefined) => void; reject: (e: unknown) => void }
    | undefined;
  const stopResult = new Promise<string | undefined>((res, rej) => {
    stopped = { resolve: res, reject: rej };
  });
  stopResult.catch(() => {});
  const open = (name: string, checkpointDir: string | undefined, controls: RunControls) => {
    const defaultDir = () => controls.savepointDir();
    let entry: ReturnType<JobControlSession['entry']> | undefined;
    const s = openJobControlSession({
      id: jobId,
      name,
      parallelism,
      checkpointDir,
      target: {
        status: () => {
          if (!entry) throw new EddyError('EDDY_JOB_CONTROL', 'the job is still starting');
          return {
            ...entry,
            parallelism: controls.parallelism(),
            status: stopping ? 'stopping' : 'running',
          };
        },
        async savepoint(dir) {
          if (!master) throw new EddyError('EDDY_JOB_CONTROL', 'the job is still starting');
          const path = await master.savepoint(resolve(dir ?? defaultDir()));
          (await session)?.update({ lastSavepoint: path });
          return path;
        },
        async stop(savepoint, dir, drain) {
          stopping = true;
          (await session)?.update({ status: 'stopping' });
          master?.stop(savepoint ? resolve(dir ?? defaultDir()) : undefined, { drain });
          return stopResult;
        },
        async rescale(p, operators) {
          const report = await controls.rescale(p, operators);
          if ('unchanged' in report) return report;
          (await session)?.update({
            parallelism: report.toParallelism,
            lastSavepoint: report.savepoint,
          });
          return report;
        },
      },
    }).catch((e) => {
      process.stderr.write(`job control unavailable: ${(e as Error).message}\n`);
      return undefined;
    });
    void s.then((x) => {
      entry = x?.entry();
      settled = x;
    });
    return s;
  };
  return {
    jobId,
    onStarted(m, name, checkpointDir, controls) {
      master = m;
      session ??= open(name, checkpointDir, controls);
    },
    onCancelled() {
      // Synchronous: the process exits right after. A session still opening is left to the
      // registry's crash detection.
      settled?.cancel();
    },
    onEnded(result, error) {
      if (error) stopped?.reject(error);
      else stopped?.resolve(result?.savepoint);
      void session?.then((s) =>
        s?.end(error ? 'failed' : result?.stopped ? 'stopped' : 'finished', {
          lastSavepoint: result?.savepoint,
        }),
      );
    },
  };
};
