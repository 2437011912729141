/**
 * A checkpoint that cannot be written fails alone: the job keeps running, says so, and the
 * previous checkpoint stays valid.
 */
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineJob, runJobInThread } from '../../src/api/job.js';
import { CheckpointStorage } from '../../src/checkpoint/index.js';
import { FileSink, GeneratorSource } from '../../src/connectors/index.js';
import { readParts, sorted } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'eddy-cf-'));

describe('checkpoint failures', () => {
  it('an unwritable checkpoint fails, the job continues, later checkpoints succeed', async () => {
    const output = join(tmp(), 'out');
    const dir = join(tmp(), 'chk');
    const logs: string[] = [];
    const completed: number[] = [];
    const count = 30_000;
    const job = defineJob({
      name: 'numbers',
      build(env) {
        env
          .fromSource(
            GeneratorSource.of({ count, generate: (i) => ({ n: i }), ratePerSecond: 100_000 }),
            {
              uid: 'gen',
            },
          )
          .sinkTo(FileSink.jsonl({ path: output }), { uid: 'out' });
      },
    });
    await runJobInThread(
      job,
      { parallelism: 2 },
      {
        checkpoint: { intervalMs: 20, dir },
        log: (l) => {
          logs.push(l);
          // The failure was reported: make the directory usable again.
          if (l.includes('failed') && existsSync(`${dir}.away`)) {
            rmSync(dir);
            renameSync(`${dir}.away`, dir);
          }
        },
        onCheckpoint: (s) => {
          completed.push(s.checkpointId);
          // Put a regular file where the checkpoint directory was: creating the next
          // checkpoint's directory fails (even for root), as on an unwritable or full disk.
          if (completed.length === 1) {
            renameSync(dir, `${dir}.away`);
            writeFileSync(dir, 'not a directory');
          }
        },
      },
    );
    const first = completed[0]!;
    expect(logs.some((l) => l.startsWith(`checkpoint ${first + 1} failed:`))).toBe(true);
    expect(completed).not.toContain(first + 1);
    expect(completed.filter((id) => id > first + 1).length).toBeGreaterThan(0);
    expect(sorted(readParts(output))).toEqual(
      sorted(Array.from({ length: count }, (_, n) => JSON.stringify({ n }))),
    );
    const latest = await new CheckpointStorage(dir).latestValid({ verifyData: true });
    expect(latest?.metadata.checkpointId).toBe(Math.max(...completed));
  });
});
