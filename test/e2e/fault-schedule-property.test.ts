/**
 * Random fault schedules at the checkpoint protocol's hard points, through the real CLI with
 * 2-4 worker threads: 1-3 faults drawn from the points (alignment, async snapshot, before and
 * after `_metadata`, commit notification, checkpoint abort), the actions (`throw`: the job
 * restarts by itself; `kill`: SIGKILL of the process, then `eddy run --resume`) and the hit
 * (the n-th time a thread reaches the point). Every fault has a marker, so it fires once
 * across restarts and processes, and each must have fired by the end. The committed output
 * must then be exactly the uninterrupted run's.
 *
 * Deterministic in what it checks: the fixture's source is paced by checkpoints, so with at
 * most 3 faults of hit <= 3 all of them fire while the sources are still reading (see
 * fault-job.ts), whatever the machine's speed. The seed is fast-check's random one (printed
 * on failure, with the schedule), so CI keeps exploring new schedules.
 */
import { existsSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FaultPoint, FaultSpec } from '../../src/runtime/faults.js';
import {
  describeRun,
  isPartOfReference,
  marker,
  newFaultRun,
  reference,
  runFaultJob,
  visibleOutput,
} from './fault-helpers.js';
import type { RunResult } from './helpers.js';
import { sorted } from './helpers.js';

const POINTS: readonly FaultPoint[] = [
  'alignment',
  'snapshot-async',
  'before-metadata',
  'after-metadata',
  'commit-notify',
  'abort-checkpoint',
];

interface Drawn {
  point: FaultPoint;
  action: 'throw' | 'kill';
  hit: number;
  worker: number | undefined;
}

/**
 * Parallelism and faults. One fault per (point, hit): two faults that would fire on the same
 * hit of the same thread could not both fire there (the first one throws or kills), and the
 * master's counters are not reset by an in-process restart, so the second would never fire.
 */
const schedule = fc.integer({ min: 2, max: 4 }).chain((parallelism) =>
  fc.record({
    parallelism: fc.constant(parallelism),
    faults: fc.uniqueArray(
      fc.record<Drawn>({
        point: fc.constantFrom(...POINTS),
        action: fc.constantFrom('throw' as const, 'kill' as const),
        hit: fc.integer({ min: 1, max: 3 }),
        worker: fc.option(fc.integer({ min: 0, max: parallelism - 1 }), { nil: undefined }),
      }),
      { minLength: 1, maxLength: 3, selector: (f) => `${f.point}/${f.hit}` },
    ),
  }),
);

/** `abort-checkpoint` aborts whatever its action says; only the others can kill. */
const kills = (f: Drawn) => f.action === 'kill' && f.point !== 'abort-checkpoint';

describe('random fault schedules (CLI, 2-4 worker threads)', () => {
  it('faults at protocol points, restarts and kill -9 + --resume: the output is exact', async () => {
    await fc.assert(
      fc.asyncProperty(schedule, async ({ parallelism, faults }) => {
        // 16 checkpoint-paced blocks per source subtask. A fault of hit <= 3 fires by the 4th
        // checkpoint of its attempt (one aborted checkpoint included), when a source has read
        // at most 5 blocks past the attempt's restore point, and the next attempt restores at
        // most 4 blocks further: 3 faults fire within the first 4 + 4 + 5 = 13 blocks, while
        // every source still reads (and every keyed subtask still aligns).
        const run = newFaultRun(parallelism, { count: 12_000, steps: 16 });
        const specs: FaultSpec[] = faults.map((f, i) => ({
          point: f.point,
          action: f.action,
          hit: f.hit,
          ...(f.worker === undefined ? {} : { worker: f.worker }),
          marker: marker(run, String(i)),
        }));
        const runs: RunResult[] = [];
        // Faults stay configured across resumes: one that has not fired yet may fire in the
        // resumed process (its marker keeps it from firing twice).
        const maxRuns = faults.filter(kills).length + 1;
        for (;;) {
          const r = await runFaultJob(run, specs, runs.length > 0);
          runs.push(r);
          const label = `run ${runs.length} of ${JSON.stringify(specs)}`;
          if (r.code === 0) break;
          expect(r.signal, describeRun(r, label)).toBe('SIGKILL');
          expect(
            runs.length,
            `more SIGKILLs than kill faults: ${describeRun(r, label)}`,
          ).toBeLessThan(maxRuns);
          expect(isPartOfReference(run, visibleOutput(run)), label).toBeUndefined();
        }
        const stderr = runs.map((r, i) => `--- run ${i + 1} ---\n${r.stderr}`).join('\n');
        specs.forEach((s) => {
          expect(existsSync(s.marker!), `${s.point} (hit ${s.hit}) never fired\n${stderr}`).toBe(
            true,
          );
        });
        // Every failure of the job was an injected one (nothing else broke on the way).
        for (const m of stderr.matchAll(/^job failed: (.*)$/gm)) {
          expect(m[1], stderr).toMatch(/injected fault at /);
        }
        const throws = faults.filter((f) => f.action === 'throw' && f.point !== 'abort-checkpoint');
        if (throws.length > 0 && runs.length === 1) {
          expect(stderr).toMatch(/restarting from/);
        }
        if (faults.some((f) => f.point === 'abort-checkpoint') && runs.length === 1) {
          expect(stderr).toMatch(/checkpoint \d+ (?:failed|was aborted|aborted)/);
        }
        expect(sorted(visibleOutput(run)), stderr).toEqual(sorted(reference(run)));
      }),
      { numRuns: 6, endOnFailure: true },
    );
  }, 600_000);
});
