/**
 * many-subtasks benchmark: keyed-sum on a small input at a small and a large parallelism on
 * the same bounded pool of worker threads (task slots), side by side: how long until the job
 * shows as running in `eddy list`, how long it takes, its peak RSS, and that the output is
 * the same (exact, order-independent digest).
 *
 *   npm run bench -- many-subtasks [--rounds 3] [--parallelism 2,128] [--files 4]
 *                                  [--events 20000] [--workers <n>]
 *
 * Every run is a fresh `eddy run` child process with its own EDDY_HOME; the time to running
 * is measured by polling that home's job registry every 10 ms from the bench (what `eddy
 * list` reads, socket liveness included), from the moment the child is spawned.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobRegistry } from '../src/control/registry.js';
import {
  BenchFailure,
  benchMain,
  describeMachine,
  EDDY,
  fmtRatio,
  fmtSec,
  MiB,
  machine,
  median,
  parseBenchArgs,
  positiveInt,
  REPO,
  readRunStats,
  table,
} from './common.js';
import { type DigestValue, digestDir, sameDigest } from './data.js';

const JOB = join(REPO, 'examples', 'keyed-sum.ts');

const HELP = `usage: npm run bench -- many-subtasks [options]

  --rounds <n>        rounds; each runs every parallelism once (default 3)
  --parallelism <l>   parallelisms to compare, comma-separated (default 2,128)
  --files <n>         input files (default 4)
  --events <n>        events in all (default 20000)
  --workers <n>       eddy run --workers (default: eddy's own, the number of cores)
  -h, --help          this help`;

interface RunRecord {
  readonly parallelism: number;
  readonly round: number;
  /** Spawn to `running` in the registry. */
  readonly runningMs: number;
  readonly wallMs: number;
  readonly durationMs: number;
  readonly maxRssBytes: number;
  readonly output: DigestValue & { files: number };
}

/** Users are distinct per file, so the running sums are the same at any parallelism. */
const writeInput = (dir: string, files: number, events: number): void => {
  mkdirSync(dir, { recursive: true });
  for (let f = 0; f < files; f++) {
    const n = Math.floor(((f + 1) * events) / files) - Math.floor((f * events) / files);
    let text = '';
    for (let i = 0; i < n; i++) {
      text += `{"user":"f${f}-u${(i * 7) % 997}","amount":${(i % 11) + 1}}\n`;
    }
    writeFileSync(join(dir, `events-${String(f).padStart(3, '0')}.jsonl`), text);
  }
};

const runOnce = async (
  p: number,
  round: number,
  input: string,
  workers: number | undefined,
): Promise<RunRecord> => {
  const root = mkdtempSync(join(tmpdir(), `eddy-bench-many-p${p}-`));
  const home = join(root, 'home');
  const output = join(root, 'out');
  const statsFile = join(root, 'stats.json');
  const args = [EDDY, 'run', JOB, '-p', String(p), '--no-progress', '--stats-file', statsFile];
  if (workers !== undefined) args.push('--workers', String(workers));
  args.push('--', '--input', input, '--output', output);
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    cwd: REPO,
    env: { ...process.env, EDDY_HOME: home },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; wallMs: number }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, wallMs: performance.now() - started }));
  });
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const registry = new JobRegistry(home);
  let runningMs: number | undefined;
  while (!done && runningMs === undefined) {
    const jobs = await registry.list().catch(() => []);
    if (jobs.some((j) => j.status === 'running')) runningMs = performance.now() - started;
    else await new Promise((r) => setTimeout(r, 10));
  }
  const { code, wallMs } = await exited;
  if (code !== 0) throw new BenchFailure(`p=${p} round ${round}: exit ${code}\n${stderr}`);
  if (runningMs === undefined) {
    throw new BenchFailure(`p=${p} round ${round}: finished before it was seen running`);
  }
  const stats = readRunStats(statsFile, `p=${p}`);
  const out = digestDir(output);
  rmSync(root, { recursive: true, force: true });
  return {
    parallelism: p,
    round,
    runningMs,
    wallMs,
    durationMs: stats.durationMs,
    maxRssBytes: stats.maxRssBytes,
    output: out,
  };
};

export const main = benchMain('many-subtasks', async (argv) => {
  const values = parseBenchArgs(
    argv,
    {
      rounds: { type: 'string' },
      parallelism: { type: 'string' },
      files: { type: 'string' },
      events: { type: 'string' },
      workers: { type: 'string' },
    },
    HELP,
  );
  if (typeof values === 'number') return values;
  const rounds = positiveInt('rounds', values.rounds as string | undefined, 3);
  const files = positiveInt('files', values.files as string | undefined, 4);
  const events = positiveInt('events', values.events as string | undefined, 20_000);
  const workers =
    values.workers === undefined ? undefined : positiveInt('workers', values.workers as string, 1);
  const parallelisms = String(values.parallelism ?? '2,128')
    .split(',')
    .map((s) => positiveInt('parallelism', s, 1));
  const host = machine();
  console.log(`many-subtasks: keyed-sum, ${events} events in ${files} files`);
  console.log(`machine: ${describeMachine(host)}`);
  const threads = workers ?? availableParallelism();
  console.log(
    `worker threads: ${workers === undefined ? `default (${threads} cores)` : workers}, at most the parallelism\n`,
  );
  const input = mkdtempSync(join(tmpdir(), 'eddy-bench-many-in-'));
  writeInput(input, files, events);
  const runs: RunRecord[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      // Rotate the starting parallelism so drift hits all alike.
      const order = parallelisms.map(
        (_, i) => parallelisms[(i + round - 1) % parallelisms.length]!,
      );
      for (const p of order) {
        const r = await runOnce(p, round, input, workers);
        runs.push(r);
        console.log(
          `round ${round} p=${p}: running after ${r.runningMs.toFixed(0)} ms, finished in ${fmtSec(r.durationMs)} s (wall ${fmtSec(r.wallMs)} s), peak RSS ${(r.maxRssBytes / MiB).toFixed(0)} MiB`,
        );
      }
    }
  } finally {
    rmSync(input, { recursive: true, force: true });
  }
  const reference = runs[0]!.output;
  for (const r of runs) {
    if (!sameDigest(r.output, reference)) {
      throw new BenchFailure(
        `p=${r.parallelism} round ${r.round}: output differs (${r.output.lines} lines) from p=${runs[0]!.parallelism} (${reference.lines} lines)`,
      );
    }
  }
  const of = (p: number) => runs.filter((r) => r.parallelism === p);
  const base = median(of(parallelisms[0]!).map((r) => r.maxRssBytes));
  const rows = parallelisms.map((p) => {
    const rs = of(p);
    const rss = median(rs.map((r) => r.maxRssBytes));
    return [
      `eddy run -p ${p}`,
      String(Math.min(threads, p)),
      fmtSec(median(rs.map((r) => r.runningMs))),
      fmtSec(Math.max(...rs.map((r) => r.runningMs))),
      fmtSec(median(rs.map((r) => r.durationMs))),
      fmtSec(median(rs.map((r) => r.wallMs))),
      (rss / MiB).toFixed(0),
      fmtRatio(rss / base),
    ];
  });
  console.log(
    `\n${table(
      [
        'configuration',
        'workers',
        'running after s (median)',
        '(max)',
        'duration s',
        'wall s',
        'peak RSS MiB',
        `RSS vs p=${parallelisms[0]}`,
      ],
      rows,
    )}`,
  );
  console.log(
    `\noutput: identical at every parallelism (${reference.lines} lines, order-independent digest)`,
  );
  return 0;
});
