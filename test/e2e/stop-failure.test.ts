/**
 * A failure while a stop-with-savepoint is under way: the job restarts from its latest
 * checkpoint like any other failure (restart attempts permitting), the new attempt stops as
 * soon as it is ready and writes the savepoint; resuming from it completes the output exactly
 * once. (Before, a stop turned the recoverable fault into a failed job.)
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineJob, runJobInThread } from '../../src/api/job.js';
import { CheckpointStorage } from '../../src/checkpoint/index.js';
import { FileSink, GeneratorSource } from '../../src/connectors/index.js';
import { readParts } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'eddy-sf-'));
const COUNT = 20_000;

describe('a failure during stop-with-savepoint', () => {
  it('restarts, stops at once, writes the savepoint; resuming completes the output exactly once', async () => {
    const output = join(tmp(), 'out');
    const savepoints = tmp();
    let master: { stop(dir?: string): void } | undefined;
    let seen = 0;
    const job = defineJob({
      name: 'stop-then-fail',
      build(env) {
        env
          .fromSource(
            GeneratorSource.of({
              count: COUNT,
              generate: (i) => ({ id: i }),
              ratePerSecond: 50_000,
            }),
            { uid: 'gen' },
          )
          .process<{ id: number }>(
            () => ({
              processElement(e, _ctx, out) {
                // The stop is requested, then this subtask fails before it has drained.
                if (++seen === 3000) {
                  master!.stop(savepoints);
                  throw new Error('injected crash while stopping');
                }
                out.collect(e);
              },
            }),
            { uid: 'crash' },
          )
          .sinkTo(FileSink.jsonl({ path: output }), { uid: 'out' });
      },
    });
    const logs: string[] = [];
    const result = await runJobInThread(
      job,
      { parallelism: 2 },
      {
        checkpoint: { intervalMs: 20, dir: join(tmp(), 'chk') },
        restart: { kind: 'fixed-delay', attempts: 2, delayMs: 0 },
        log: (l) => logs.push(l),
        onMaster: (m) => {
          master = m;
        },
      },
    );
    expect(logs.some((l) => l.includes('injected crash while stopping'))).toBe(true);
    expect(result.restarts).toBe(1);
    expect(result.stopped).toBe(true);
    expect(result.savepoint).toBeDefined();
    const ids = () => readParts(output).map((l) => (JSON.parse(l) as { id: number }).id);
    const before = ids();
    expect(new Set(before).size).toBe(before.length);
    expect(before.length).toBeLessThan(COUNT);

    const metadata = await new CheckpointStorage(result.savepoint!).loadMetadata(result.savepoint!);
    await runJobInThread(
      job,
      { parallelism: 3 },
      { restore: { dir: result.savepoint!, metadata }, log: () => {} },
    );
    expect(ids().sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
  });
});
