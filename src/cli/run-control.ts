/**
 * Wires a running `eddy run` into job control: a control socket plus a registry entry
 * under $EDDY_HOME, so `eddy list`, `eddy savepoint` and `eddy stop` in other shells reach it.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { type JobControlSession, openJobControlSession } from '../control/index.js';
import { EddyError } from '../core/errors.js';
import type { JobMaster } from '../runtime/job-master.js';
import type { RunCommandOptions } from './run.js';

type Hooks = Pick<RunCommandOptions, 'jobId' | 'onStarted' | 'onEnded'>;

export const runHooks = (parallelism: number): Hooks => {
  const jobId = randomUUID();
  let session: Promise<JobControlSession | undefined> = Promise.resolve(undefined);
  let stopping = false;
  let stopped:
    | { resolve: (p: string | undefined) => void; reject: (e: unknown) => void }
    | undefined;
  const stopResult = new Promise<string | undefined>((res, rej) => {
    stopped = { resolve: res, reject: rej };
  });
  stopResult.catch(() => {});
  return {
    jobId,
    onStarted(master: JobMaster, name: string, checkpointDir: string | undefined) {
      const defaultDir = () =>
        resolve('.eddy', 'savepoints', name.replace(/[^A-Za-z0-9._-]+/g, '_'));
      session = openJobControlSession({
        id: jobId,
        name,
        parallelism,
        checkpointDir,
        target: {
          status: () => ({ ...current(), status: stopping ? 'stopping' : 'running' }),
          async savepoint(dir) {
            const path = await master.savepoint(resolve(dir ?? defaultDir()));
            (await session)?.update({ lastSavepoint: path });
            return path;
          },
          async stop(savepoint, dir) {
            stopping = true;
            (await session)?.update({ status: 'stopping' });
            master.stop(savepoint ? resolve(dir ?? defaultDir()) : undefined);
            return stopResult;
          },
        },
      }).catch((e) => {
        process.stderr.write(`job control unavailable: ${(e as Error).message}\n`);
        return undefined;
      });
      let entry: ReturnType<JobControlSession['entry']> | undefined;
      const current = () => {
        if (!entry) throw new EddyError('EDDY_JOB_CONTROL', 'the job is still starting');
        return entry;
      };
      void session.then((s) => {
        entry = s?.entry();
      });
    },
    onEnded(result, error) {
      if (error) stopped?.reject(error);
      else stopped?.resolve(result?.savepoint);
      void session.then((s) =>
        s?.end(error ? 'failed' : result?.stopped ? 'stopped' : 'finished', {
          lastSavepoint: result?.savepoint,
        }),
      );
    },
  };
};
