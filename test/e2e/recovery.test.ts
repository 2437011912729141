/**
 * Durability through the real CLI and real processes: kill -9 and --resume, stop with a
 * savepoint and --from-savepoint, a corrupted newest checkpoint, an incompatible savepoint.
 * Users live in one input file each, so the exact output is known (see keyed-sum.test.ts).
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeMetadata, encodeMetadata } from '../../src/checkpoint/index.js';
import {
  committedParts,
  EDDY,
  eddy,
  readParts,
  referenceSums,
  runningJobId,
  type SumEvent,
  sorted,
  tempDir,
  waitUntil,
  writeEventFiles,
} from './helpers.js';

const files = (n: number, perFile: number): SumEvent[][] =>
  Array.from({ length: n }, (_, f) =>
    Array.from({ length: perFile }, (_, i) => ({
      user: `f${f}-u${(i * 7) % 97}`,
      amount: (i % 13) + 1,
    })),
  );

const runArgs = (
  input: string,
  output: string,
  checkpoints: string,
  extra: string[] = [],
  rate = 20_000,
) => [
  'run',
  'examples/keyed-sum.ts',
  '-p',
  '2',
  '--checkpoint-interval',
  '100',
  '--checkpoint-dir',
  checkpoints,
  ...extra,
  '--',
  '--input',
  input,
  '--output',
  output,
  '--rate',
  String(rate),
];

/**
 * Starts eddy and kills it with SIGKILL `ms` after it has completed a new checkpoint in
 * `checkpoints` (so every kill lands mid-run, whatever the machine's speed).
 */
const killAfterCheckpoint = (args: string[], checkpoints: string, ms: number) =>
  new Promise<void>((resolve) => {
    const before = newestCheckpoint(checkpoints);
    const child = spawn(process.execPath, [EDDY, ...args], { stdio: 'ignore' });
    const poll = setInterval(() => {
      const now = newestCheckpoint(checkpoints);
      if (now !== undefined && now !== before) {
        clearInterval(poll);
        setTimeout(() => child.kill('SIGKILL'), ms);
      }
    }, 20);
    child.on('exit', () => {
      clearInterval(poll);
      resolve();
    });
  });

const visibleParts = (dir: string) => (existsSync(dir) ? readParts(dir) : []);

const newestCheckpoint = (dir: string): string | undefined =>
  (existsSync(dir) ? readdirSync(dir) : [])
    .filter((d) => /^chk-\d+$/.test(d))
    .sort((a, b) => Number(b.slice(4)) - Number(a.slice(4)))
    .filter((d) => readdirSync(join(dir, d)).includes('_metadata'))[0];

describe('recovery through the CLI', () => {
  it('kill -9 at several points, then --resume: the committed output is exact', async () => {
    const data = files(4, 15_000);
    const input = writeEventFiles(data);
    const output = join(tempDir(), 'out');
    const checkpoints = join(tempDir(), 'chk');
    const reference = new Set(referenceSums(data));
    for (const ms of [130, 20, 250]) {
      await killAfterCheckpoint(runArgs(input, output, checkpoints, ['--resume']), checkpoints, ms);
      // Whatever is visible at any moment is part of the exact output: nothing torn, no duplicates.
      const visible = visibleParts(output);
      expect(new Set(visible).size).toBe(visible.length);
      expect(visible.every((l) => reference.has(l))).toBe(true);
    }
    const r = await eddy(runArgs(input, output, checkpoints, ['--resume'], 200_000));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming from .*chk-\d+/);
    expect(sorted(readParts(output))).toEqual(sorted(referenceSums(data)));
  });

  it('falls back past a corrupted newest checkpoint, naming the file', async () => {
    const data = files(4, 10_000);
    const input = writeEventFiles(data);
    const output = join(tempDir(), 'out');
    const checkpoints = join(tempDir(), 'chk');
    await killAfterCheckpoint(runArgs(input, output, checkpoints), checkpoints, 300);
    const newest = newestCheckpoint(checkpoints)!;
    expect(newest).toBeDefined();
    const keyed = readdirSync(join(checkpoints, newest)).find((f) => f.endsWith('.keyed'))!;
    const path = join(checkpoints, newest, keyed);
    const bytes = readFileSync(path);
    const at = bytes.length >> 1;
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
    writeFileSync(path, bytes);
    const r = await eddy(runArgs(input, output, checkpoints, ['--resume'], 200_000));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`skipping checkpoint ${join(checkpoints, newest)}`);
    expect(r.stderr).toContain(keyed);
    expect(sorted(readParts(output))).toEqual(sorted(referenceSums(data)));
  });

  it('eddy stop --savepoint, then --from-savepoint: exact output; an incompatible savepoint is refused', async () => {
    const home = tempDir('eddy-home-');
    const env = { ...process.env, EDDY_HOME: home };
    const data = files(4, 15_000);
    const input = writeEventFiles(data);
    const output = join(tempDir(), 'out');
    const savepoints = tempDir('eddy-sp-');
    const job = spawn(process.execPath, [EDDY, ...runArgs(input, output, join(tempDir(), 'chk'))], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => job.on('exit', r));
    const id = await runningJobId(env);
    // Stop mid-run, whatever the machine's speed: once some output is committed (at 20k/s the
    // 60k events take ~3 s, so the stop lands well before the end).
    await waitUntil(() => committedParts(output).length > 0, 'committed output');
    const stop = await eddyWithEnv(['stop', id, '--savepoint', '--dir', savepoints], env);
    expect(stop.code, stop.stderr).toBe(0);
    const savepoint = stop.stdout.trim().split('\n').pop()!;
    expect(savepoint).toMatch(/savepoint-keyed-sum-\d+-/);
    expect(await exited).toBe(0);
    const partial = readParts(output);
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(60_000);
    const listed = JSON.parse((await eddyWithEnv(['list', '--json'], env)).stdout) as {
      status: string;
    }[];
    expect(listed.map((j) => j.status)).toEqual(['stopped']);

    // A savepoint is relocatable: restore from a copy somewhere else.
    const moved = join(tempDir(), 'moved-savepoint');
    cpSync(savepoint, moved, { recursive: true });
    const resumed = await eddy(
      runArgs(input, output, join(tempDir(), 'chk2'), ['--from-savepoint', moved], 200_000),
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(sorted(readParts(output))).toEqual(sorted(referenceSums(data)));

    const meta = decodeMetadata(readFileSync(join(moved, '_metadata')), moved);
    writeFileSync(join(moved, '_metadata'), encodeMetadata({ ...meta, formatVersion: 3 }));
    const refused = await eddy(
      runArgs(input, join(tempDir(), 'o2'), join(tempDir(), 'chk3'), ['--from-savepoint', moved]),
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /EDDY_CHECKPOINT_INCOMPATIBLE.*format version 3; this eddy reads versions 1 and 2/,
    );
  });
});

const eddyWithEnv = (args: string[], env: NodeJS.ProcessEnv) => eddy(args, undefined, env);
