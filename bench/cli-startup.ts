/**
 * cli-startup benchmark: how long `eddy --help`, `eddy list` and `eddy inspect <checkpoint>`
 * take from process start to exit, against `node -e 0` (the floor: starting Node itself).
 * The target is at most 3x `node -e 0`: eddy's own code runs as compiled JavaScript (dist/)
 * and imports a command's modules only when that command runs; the TypeScript loader is loaded
 * only for a .ts job. For comparison, `--help` from the TypeScript sources through tsx
 * (EDDY_DEV=1, how every command started before the compiled build) and `eddy run` of a tiny
 * job in plain JavaScript and in TypeScript.
 *
 * Every configuration runs once per round, interleaved (the first rotates each round), as its
 * own child process; medians over the rounds.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CheckpointStorage,
  keyedStateFileName,
  writeKeyedStateFile,
} from '../src/checkpoint/index.js';
import { assignToKeyGroup, computeKeyGroupRange } from '../src/keygroups/index.js';
import type { KeyGroupSnapshot } from '../src/state/types.js';
import {
  BenchFailure,
  benchMain,
  describeMachine,
  EDDY,
  fmtRatio,
  machine,
  median,
  parseBenchArgs,
  positiveInt,
  REPO,
  table,
} from './common.js';

const HELP = `usage: npm run bench -- cli-startup [--rounds N]

  --rounds N   runs of every configuration (default 20); medians reported`;

/** The budget: a command may take at most this many times `node -e 0`. */
const MAX_RATIO = 3;

/** A real checkpoint to inspect: one keyed operator, 2 subtasks, 1,000 keys in 128 groups. */
const writeCheckpoint = async (base: string): Promise<string> => {
  const maxP = 128;
  const storage = new CheckpointStorage(base);
  const dir = await storage.createCheckpointDir(1);
  const groups = new Map<number, Array<[string, unknown]>>();
  for (let i = 0; i < 1000; i++) {
    const key = `user-${i}`;
    const kg = assignToKeyGroup(key, maxP);
    groups.set(kg, [...(groups.get(kg) ?? []), [key, i]]);
  }
  const snapshots: KeyGroupSnapshot[] = [...groups].map(([keyGroup, entries]) => ({
    keyGroup,
    states: [{ name: 'sum', kind: 'value' as const, entries }],
  }));
  const subtasks = [];
  for (let i = 0; i < 2; i++) {
    const range = computeKeyGroupRange(maxP, 2, i);
    const mine = snapshots.filter((s) => s.keyGroup >= range.start && s.keyGroup <= range.end);
    subtasks.push({
      index: i,
      keyed: await writeKeyedStateFile(dir, keyedStateFileName('sum', i), range, mine),
    });
  }
  await storage.commit(dir, {
    formatVersion: 1,
    jobName: 'cli-startup',
    jobId: 'cli-startup',
    checkpointId: 1,
    savepoint: false,
    timestamp: Date.now(),
    operators: [{ uid: 'sum', name: 'sum', parallelism: 2, maxParallelism: maxP, subtasks }],
  });
  return dir;
};

const JOB = (ts: boolean) => `import { defineJob, FileSink, GeneratorSource } from 'eddy';
export default defineJob({
  name: 'tiny',
  build(env, args) {
    env
      .fromSource(GeneratorSource.of({ count: 10, generate: (i${ts ? ': number' : ''}) => i }), { uid: 'n' })
      .sinkTo(FileSink.jsonl({ path: args[0]${ts ? '!' : ''}, existingOutput: 'append' }), { uid: 'out' });
  },
});
`;

interface Config {
  readonly name: string;
  readonly args: string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Held to the 3x budget. */
  readonly budget: boolean;
}

const time = (c: Config): number => {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, c.args, {
    cwd: REPO,
    env: { ...process.env, ...c.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) {
    throw new BenchFailure(`${c.name} exited ${r.status}: ${String(r.stderr).trim()}`);
  }
  return ms;
};

export const main = benchMain('cli-startup', async (argv) => {
  const opts = parseBenchArgs(argv, { rounds: { type: 'string' } }, HELP);
  if (typeof opts === 'number') return opts;
  const rounds = positiveInt('rounds', opts.rounds as string | undefined, 20);

  const work = mkdtempSync(join(tmpdir(), 'eddy-cli-startup-'));
  try {
    const home = join(work, 'home');
    mkdirSync(home);
    const checkpoint = await writeCheckpoint(join(work, 'checkpoints'));
    // Jobs import 'eddy': inside the repository it resolves to the package itself (dist/).
    const jobs = join(REPO, 'bench', '.data', 'cli-startup');
    mkdirSync(jobs, { recursive: true });
    writeFileSync(join(jobs, 'tiny.mjs'), JOB(false));
    writeFileSync(join(jobs, 'tiny.ts'), JOB(true));
    const run = (ext: string): string[] => [
      EDDY,
      'run',
      join(jobs, `tiny.${ext}`),
      '-p',
      '1',
      '--no-progress',
      '--',
      join(work, `out-${ext}`),
    ];
    const configs: Config[] = [
      { name: 'node -e 0', args: ['-e', '0'], budget: false },
      { name: 'eddy --help', args: [EDDY, '--help'], budget: true },
      { name: 'eddy list', args: [EDDY, 'list'], env: { EDDY_HOME: home }, budget: true },
      { name: 'eddy inspect <checkpoint>', args: [EDDY, 'inspect', checkpoint], budget: true },
      {
        name: 'eddy --help from sources (EDDY_DEV=1, tsx)',
        args: [EDDY, '--help'],
        env: { EDDY_DEV: '1' },
        budget: false,
      },
      { name: 'eddy run tiny.mjs -p 1', args: run('mjs'), budget: false },
      { name: 'eddy run tiny.ts -p 1', args: run('ts'), budget: false },
    ];
    for (const c of configs) time(c); // warm the file cache once
    const samples = configs.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < configs.length; k++) {
        const i = (k + r) % configs.length;
        samples[i]!.push(time(configs[i]!));
      }
    }
    const medians = samples.map(median);
    const floor = medians[0]!;
    const failed = configs.filter((c, i) => c.budget && medians[i]! > MAX_RATIO * floor);
    console.log(`\ncli-startup: ${rounds} rounds, medians of wall time per process`);
    console.log(`${new Date().toISOString()}  ${describeMachine(machine())}\n`);
    console.log(
      table(
        ['command', 'median ms', 'vs node -e 0', `budget ${MAX_RATIO}x`],
        configs.map((c, i) => [
          c.name,
          medians[i]!.toFixed(1),
          fmtRatio(medians[i]! / floor),
          c.budget ? (medians[i]! <= MAX_RATIO * floor ? 'ok' : 'OVER') : '',
        ]),
      ),
    );
    if (failed.length > 0) {
      throw new BenchFailure(
        `over ${MAX_RATIO}x node -e 0: ${failed.map((c) => c.name).join(', ')}`,
      );
    }
    return 0;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
