/**
 * Faults at the hard points of the checkpoint protocol, through the real CLI and real worker
 * threads: an injected failure (`throw`) or a crash of the process (`kill`, SIGKILL) during
 * barrier alignment, during the asynchronous part of a snapshot, between the state files and
 * `_metadata`, between `_metadata` and the commit notification, during the commit
 * notification, and an aborted checkpoint followed by new ones. Each must end in the exact
 * output: a `throw` by the job restarting itself, a `kill` by `eddy run --resume`.
 *
 * No outcome depends on timing: the fixture's source is paced by checkpoints (a fault set to
 * the 3rd checkpoint fires while the sources are reading, on any machine), and every fault
 * leaves a marker file, so a fault that did not fire fails its test instead of passing
 * vacuously.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, type ExpectStatic, it } from 'vitest';
import type { FaultPoint, FaultSpec } from '../../src/runtime/faults.js';
import {
  completedCheckpoints,
  describeRun,
  type FaultRun,
  isPartOfReference,
  limiter,
  marker,
  newFaultRun,
  reference,
  runFaultJob,
  visibleOutput,
} from './fault-helpers.js';
import { sorted } from './helpers.js';

/** Three eddy processes at a time: much of a run waits for checkpoints or I/O, not the CPU. */
const slot = limiter(3);
const TIMEOUT = 150_000;

/**
 * The hit each point's fault fires on: the 3rd time a thread reaches it (checkpoints 1 and 2
 * completed before), except the asynchronous snapshot, reached once per operator snapshot
 * written (3 per worker and checkpoint here): its 7th hit is in checkpoint 3 too. With 10
 * paced steps (>= 10 checkpoints per run) every one lands mid-run.
 */
const HIT: Record<FaultPoint, number> = {
  alignment: 3,
  'snapshot-async': 7,
  'before-metadata': 3,
  'after-metadata': 3,
  'commit-notify': 3,
  'abort-checkpoint': 2,
};

const WORKER_POINTS = ['alignment', 'snapshot-async', 'commit-notify'] as const;
const MASTER_POINTS = ['before-metadata', 'after-metadata'] as const;
const POINTS: readonly FaultPoint[] = [...WORKER_POINTS, ...MASTER_POINTS];

/**
 * The newest checkpoint with `_metadata` once the process was killed at the 3rd time it
 * reached a master point (undefined: not fixed by the protocol alone).
 */
const newestAfterKill: Partial<Record<FaultPoint, number>> = {
  // Checkpoint 3's files are written and acknowledged, its `_metadata` is not.
  'before-metadata': 2,
  // Checkpoint 3 is complete; no sink has committed its output yet.
  'after-metadata': 3,
};

const fault = (run: FaultRun, spec: Omit<FaultSpec, 'marker'>, name: string): FaultSpec => ({
  ...spec,
  marker: marker(run, name),
});

const expectFired = (expect: ExpectStatic, run: FaultRun, name: string, point: string) => {
  expect(existsSync(marker(run, name)), `the fault at ${point} never fired`).toBe(true);
};

const expectExactOutput = (expect: ExpectStatic, run: FaultRun) => {
  expect(sorted(visibleOutput(run))).toEqual(sorted(reference(run)));
};

describe('faults at checkpoint-protocol points (CLI, 2 worker threads)', () => {
  for (const point of POINTS) {
    it.concurrent(
      `throw at ${point}: the job restarts by itself and the output is exact`,
      ({ expect }) =>
        slot(async () => {
          const run = newFaultRun(2);
          const r = await runFaultJob(run, [
            fault(run, { point, action: 'throw', hit: HIT[point] }, point),
          ]);
          expectFired(expect, run, point, point);
          expect(r.code, describeRun(r)).toBe(0);
          expect(r.stderr, describeRun(r)).toContain(`injected fault at ${point}`);
          // Checkpoints 1 and 2 completed before the fault: the restart resumes from one.
          expect(r.stderr, describeRun(r)).toMatch(/restarting from checkpoint \d+/);
          expect(r.stderr, describeRun(r)).toMatch(/finished in .*, 1 restart\(s\)/);
          expectExactOutput(expect, run);
        }),
      TIMEOUT,
    );

    it.concurrent(
      `kill -9 at ${point}: the process dies, --resume completes with the exact output`,
      ({ expect }) =>
        slot(async () => {
          const run = newFaultRun(2);
          const killed = await runFaultJob(run, [
            fault(run, { point, action: 'kill', hit: HIT[point] }, point),
          ]);
          expectFired(expect, run, point, point);
          expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
          // Whatever was visible at the crash is part of the exact output.
          expect(isPartOfReference(run, visibleOutput(run))).toBeUndefined();
          const newest = newestAfterKill[point];
          if (newest !== undefined) {
            expect(completedCheckpoints(run.checkpoints).at(-1)).toBe(newest);
          }
          if (point === 'before-metadata') {
            // The state files of checkpoint 3 are there; without `_metadata` they are not a
            // checkpoint, and --resume must not use them.
            expect(readdirSync(join(run.checkpoints, 'chk-3')).length).toBeGreaterThan(0);
          }

          const resumed = await runFaultJob(run, [], true);
          expect(resumed.code, describeRun(resumed, 'eddy run --resume')).toBe(0);
          expect(resumed.stderr).toMatch(
            newest === undefined
              ? /resuming from .*chk-\d+/
              : new RegExp(`resuming from .*chk-${newest}\\b`),
          );
          expect(resumed.stderr).not.toContain('injected fault');
          expectExactOutput(expect, run);
        }),
      TIMEOUT,
    );
  }

  it.concurrent(
    'an aborted checkpoint: the job keeps running, later checkpoints complete, exact output',
    ({ expect }) =>
      slot(async () => {
        const run = newFaultRun(2);
        const r = await runFaultJob(run, [
          fault(run, { point: 'abort-checkpoint', action: 'throw', hit: 2 }, 'abort'),
        ]);
        expectFired(expect, run, 'abort', 'abort-checkpoint');
        expect(r.code, describeRun(r)).toBe(0);
        expect(r.stderr, describeRun(r)).toMatch(/checkpoint 2 (?:failed|was aborted|aborted)/);
        expect(r.stderr, describeRun(r)).not.toMatch(/checkpoint 2 completed/);
        const completed = [...r.stderr.matchAll(/checkpoint (\d+) completed/g)].map((m) =>
          Number(m[1]),
        );
        expect(completed, describeRun(r)).toContain(1);
        expect(
          completed.some((id) => id > 2),
          describeRun(r),
        ).toBe(true);
        // An abort is not a failure of the job.
        expect(r.stderr, describeRun(r)).not.toMatch(/restarting from/);
        expectExactOutput(expect, run);
      }),
    TIMEOUT,
  );

  it.concurrent(
    'an aborted checkpoint, then kill -9 before the next `_metadata`: --resume uses the one after the abort',
    ({ expect }) =>
      slot(async () => {
        const run = newFaultRun(2);
        // Checkpoint 2 is aborted; before-metadata is reached by checkpoints 1, 3 and 4:
        // its 3rd hit kills the process while checkpoint 4 lacks `_metadata`.
        const killed = await runFaultJob(run, [
          fault(run, { point: 'abort-checkpoint', action: 'throw', hit: 2 }, 'abort'),
          fault(run, { point: 'before-metadata', action: 'kill', hit: 3 }, 'kill'),
        ]);
        expectFired(expect, run, 'abort', 'abort-checkpoint');
        expectFired(expect, run, 'kill', 'before-metadata');
        expect(killed.signal, describeRun(killed)).toBe('SIGKILL');
        expect(killed.stderr, describeRun(killed)).toMatch(
          /checkpoint 2 (?:failed|was aborted|aborted)/,
        );
        expect(completedCheckpoints(run.checkpoints)).toEqual([1, 3]);
        expect(isPartOfReference(run, visibleOutput(run))).toBeUndefined();

        const resumed = await runFaultJob(run, [], true);
        expect(resumed.code, describeRun(resumed, 'eddy run --resume')).toBe(0);
        expect(resumed.stderr).toMatch(/resuming from .*chk-3\b/);
        expectExactOutput(expect, run);
      }),
    TIMEOUT,
  );
});
