/**
 * Random rescale schedules in one thread, shared by the property tests: run a job, stop it
 * with a savepoint after a random time, restore it at another parallelism (sometimes with an
 * injected crash and restart in between), repeat, then run to the end of the input.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import type { JobDefinition } from '../../src/api/job.js';
import { runJobInThread } from '../../src/api/job.js';
import { CheckpointStorage } from '../../src/checkpoint/index.js';
import type { RestoreSource } from '../../src/runtime/protocol.js';

/** Where a run crashes: the user function throws at its `at`-th record (per thread). */
export type Fault = { at: number } | undefined;

/** One run: stop with a savepoint after `stopAfterMs` (unless the input ends first). */
export interface Step {
  readonly stopAfterMs: number | undefined;
  readonly parallelism: number;
  readonly crashAt: number | undefined;
}

/** Steps with stop times, parallelisms up to `maxParallelism` and crash points up to `maxCrashAt`. */
export const stepsArb = (o: {
  maxParallelism: number;
  maxCrashAt: number;
  stopMs: { min: number; max: number };
  steps: { min: number; max: number };
}): fc.Arbitrary<Step[]> =>
  fc.array(
    fc.record({
      stopAfterMs: fc.integer(o.stopMs) as fc.Arbitrary<number | undefined>,
      parallelism: fc.integer({ min: 1, max: o.maxParallelism }),
      crashAt: fc.option(fc.integer({ min: 1, max: o.maxCrashAt }), { nil: undefined }),
    }),
    { minLength: o.steps.min, maxLength: o.steps.max },
  );

/**
 * Runs `steps`, then a last run at `lastParallelism` to the end of the input, each restored
 * from the previous one's savepoint; returns when the input ended. `make` builds the job for
 * one run (writing into the same output every time).
 */
export const runSchedule = async (
  make: (fault: Fault) => JobDefinition,
  steps: readonly Step[],
  lastParallelism: number,
  o: { maxParallelism: number; tmp: () => string; backend?: 'heap' | 'disk' },
): Promise<void> => {
  const savepoints = o.tmp();
  let restore: RestoreSource | undefined;
  for (const step of [
    ...steps,
    { stopAfterMs: undefined, parallelism: lastParallelism, crashAt: undefined },
  ]) {
    const result = await runJobInThread(
      make(step.crashAt === undefined ? undefined : { at: step.crashAt }),
      { parallelism: step.parallelism, maxParallelism: o.maxParallelism },
      {
        restore,
        checkpoint: { intervalMs: 10, dir: join(o.tmp(), 'chk') },
        restart: { kind: 'fixed-delay', attempts: 3, delayMs: 0 },
        ...(o.backend === undefined
          ? {}
          : { stateBackend: o.backend, localStateDir: join(o.tmp(), 'local') }),
        log: () => {},
        onMaster: (m) => {
          if (step.stopAfterMs !== undefined)
            setTimeout(() => m.stop(savepoints), step.stopAfterMs);
        },
      },
    );
    if (!result.savepoint) break;
    const metadata = await new CheckpointStorage(result.savepoint).loadMetadata(result.savepoint);
    restore = { dir: result.savepoint, metadata };
  }
};
