/**
 * keyed-sum benchmark: a running sum per user over JSONL files, comparing the hand-written
 * single-threaded Node program (bench/baselines/handwritten-keyed-sum.mjs) with
 * `eddy run examples/keyed-sum.ts` at parallelism 1 and 2.
 *
 *   npm run bench -- keyed-sum [--rounds 3] [--events 5000000] [--users 100000] [--files 8]
 *
 * Every run is a fresh child process with a fresh empty output directory; configurations are
 * interleaved round by round (the starting one rotates) so drift in machine state hits all of
 * them alike. Every run's output is checked against the baseline's with an order-independent
 * digest of its lines.
 *
 * Besides each program's own job time, every run's CPU time (user + system, all threads; GNU
 * time) is recorded: on this shared 2-core machine it varies far less with other load than
 * wall time. Each round also runs every eddy configuration once over an empty input: its job
 * time is eddy's fixed start-up and teardown (worker threads, module loading), reported
 * separately, and subtracted for the "events/s after start-up" column. The headline events/s
 * still includes start-up.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  BenchFailure,
  benchMain,
  describeMachine,
  EDDY,
  fmtInt,
  fmtRatio,
  fmtSec,
  MiB,
  machine,
  median,
  parseBenchArgs,
  positiveInt,
  REPO,
  readRunStats,
  runChild,
  table,
} from './common.js';
import {
  DATA_ROOT,
  DEFAULT_KEYED_SUM_DATA,
  type DigestValue,
  digestDir,
  ensureKeyedSumData,
  type KeyedSumDataParams,
  sameDigest,
} from './data.js';

const BASELINE = join(REPO, 'bench', 'baselines', 'handwritten-keyed-sum.mjs');
const JOB = join(REPO, 'examples', 'keyed-sum.ts');

const HELP = `usage: npm run bench -- keyed-sum [options]

  --rounds <n>        rounds; each runs every configuration once (default 3)
  --events <n>        events in the data set (default ${DEFAULT_KEYED_SUM_DATA.events})
  --users <n>         distinct users (default ${DEFAULT_KEYED_SUM_DATA.users})
  --files <n>         input files (default ${DEFAULT_KEYED_SUM_DATA.files})
  --seed <n>          data generator seed (default ${DEFAULT_KEYED_SUM_DATA.seed})
  --parallelism <l>   eddy parallelisms to run, comma-separated (default 1,2)
  --keep-output       keep the runs' output directories (under the OS temp dir)
  -h, --help          this help`;

/** One configuration: how to start it, given input, output and stats file paths. */
interface Config {
  readonly id: string;
  readonly label: string;
  readonly parallelism: number;
  readonly args: (input: string, output: string, stats: string) => string[];
}

/** The stats file contract shared by the baseline and `eddy run --stats-file`. */

interface RunRecord {
  readonly config: string;
  readonly round: number;
  /** Duration as measured by the program itself (the stats file). */
  readonly durationMs: number;
  /** Wall-clock time of the whole child process, startup included. */
  readonly wallMs: number;
  /** CPU time of the whole child process (all threads), when GNU time is installed. */
  readonly cpuMs: number | undefined;
  readonly recordsIn: number;
  readonly eventsPerSec: number;
  readonly maxRssBytes: number;
  readonly output: DigestValue & { files: number };
  readonly stats: unknown;
}

interface ConfigSummary {
  readonly config: string;
  readonly label: string;
  readonly runs: number;
  readonly medianEventsPerSec: number;
  readonly medianDurationMs: number;
  readonly medianWallMs: number;
  /** Median CPU time (user + system, all threads) of the runs; NaN without GNU time. */
  readonly medianCpuMs: number;
  /** Median job time of the empty-input runs (eddy only; 0 for the baseline). */
  readonly medianStartupMs: number;
  /** events / (median job time - median start-up), i.e. throughput once running. */
  readonly eventsPerSecAfterStartup: number;
  readonly medianMaxRssBytes: number;
  /** Median throughput of this config / median throughput of the baseline (>1: faster). */
  readonly throughputVsBaseline: number;
  /** Median wall time of the baseline / median wall time of this config (>1: faster). */
  readonly wallSpeedupVsBaseline: number;
  /** Median peak RSS of this config / median peak RSS of the baseline. */
  readonly rssVsBaseline: number;
}

const configs = (parallelisms: readonly number[]): Config[] => [
  {
    id: 'baseline',
    label: 'hand-written Node (1 thread)',
    parallelism: 1,
    args: (input, output, stats) => [BASELINE, input, output, stats],
  },
  ...parallelisms.map(
    (p): Config => ({
      id: `eddy-p${p}`,
      label: `eddy run -p ${p}`,
      parallelism: p,
      args: (input, output, stats) => [
        EDDY,
        'run',
        JOB,
        '-p',
        String(p),
        '--no-progress',
        '--stats-file',
        stats,
        '--',
        '--input',
        input,
        '--output',
        output,
      ],
    }),
  ),
];

const runOnce = async (
  config: Config,
  round: number,
  input: string,
  events: number,
  keepOutput: boolean,
  verify: (r: RunRecord) => void,
): Promise<RunRecord> => {
  const root = mkdtempSync(join(tmpdir(), `eddy-bench-${config.id}-`));
  const output = join(root, 'out');
  const statsFile = join(root, 'stats.json');
  mkdirSync(output);
  let keep = keepOutput;
  try {
    const child = await runChild(config.args(input, output, statsFile), { cpu: true });
    if (child.code !== 0) {
      keep = true;
      const how = child.signal ? `signal ${child.signal}` : `exit code ${child.code}`;
      throw new BenchFailure(
        `${config.label} (round ${round}) failed with ${how}; output kept in ${root}\n` +
          `--- stderr ---\n${child.stderr.trimEnd()}\n--- stdout ---\n${child.stdout.trimEnd()}`,
      );
    }
    const stats = readRunStats(statsFile, config.label);
    if (stats.recordsIn !== events) {
      keep = true;
      throw new BenchFailure(
        `${config.label} (round ${round}): stats say recordsIn=${stats.recordsIn}, expected ${events}; output kept in ${root}`,
      );
    }
    const digest = digestDir(output);
    const record: RunRecord = {
      config: config.id,
      round,
      durationMs: stats.durationMs,
      wallMs: child.wallMs,
      cpuMs: child.cpuMs,
      recordsIn: stats.recordsIn,
      eventsPerSec: events / (stats.durationMs / 1000),
      maxRssBytes: stats.maxRssBytes,
      output: digest,
      stats,
    };
    try {
      verify(record);
    } catch (e) {
      keep = true;
      if (e instanceof BenchFailure) throw new BenchFailure(`${e.message}; output kept in ${root}`);
      throw e;
    }
    return record;
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
    else if (keepOutput) console.log(`    output kept in ${root}`);
  }
};

/**
 * eddy's fixed cost: the configuration's job time over an empty input directory (starting
 * the worker threads, loading the job module in each, tearing down).
 */
const startupOnce = async (config: Config, round: number): Promise<number> => {
  const root = mkdtempSync(join(tmpdir(), `eddy-bench-${config.id}-startup-`));
  const input = join(root, 'in');
  const output = join(root, 'out');
  const statsFile = join(root, 'stats.json');
  mkdirSync(input);
  mkdirSync(output);
  try {
    const child = await runChild(config.args(input, output, statsFile));
    if (child.code !== 0) {
      throw new BenchFailure(
        `${config.label} (round ${round}, empty input) failed: ${child.stderr.trimEnd()}`,
      );
    }
    return readRunStats(statsFile, config.label).durationMs;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
};

const benchmark = async (argv: string[]): Promise<number> => {
  const values = parseBenchArgs(
    argv,
    {
      rounds: { type: 'string' },
      events: { type: 'string' },
      users: { type: 'string' },
      files: { type: 'string' },
      seed: { type: 'string' },
      parallelism: { type: 'string' },
      'keep-output': { type: 'boolean' },
    },
    HELP,
  );
  if (typeof values === 'number') return values;
  const str = (k: string) => values[k] as string | undefined;
  const rounds = positiveInt('rounds', str('rounds'), 3);
  const params: KeyedSumDataParams = {
    events: positiveInt('events', str('events'), DEFAULT_KEYED_SUM_DATA.events),
    users: positiveInt('users', str('users'), DEFAULT_KEYED_SUM_DATA.users),
    files: positiveInt('files', str('files'), DEFAULT_KEYED_SUM_DATA.files),
    seed: positiveInt('seed', str('seed'), DEFAULT_KEYED_SUM_DATA.seed),
  };
  const parallelisms = (str('parallelism') ?? '1,2')
    .split(',')
    .map((s) => positiveInt('parallelism', s.trim(), 1));
  const keepOutput = values['keep-output'] === true;
  const date = new Date();
  const host = machine();

  console.log(`keyed-sum benchmark — ${date.toISOString()}`);
  console.log(`machine: ${describeMachine(host)}`);

  const genStarted = performance.now();
  const data = ensureKeyedSumData(params);
  const m = data.manifest;
  console.log(
    `data: ${fmtInt(m.events)} events over ${fmtInt(m.users)} users in ${m.files} files, ` +
      `${(m.bytes / MiB).toFixed(1)} MiB, seed ${m.seed} — ${relative(REPO, data.dir)} ` +
      (data.cached ? '(cached)' : `(generated in ${fmtSec(performance.now() - genStarted)} s)`),
  );

  const cfgs = configs(parallelisms);
  console.log(`runs: ${rounds} round(s) x ${cfgs.map((c) => c.id).join(', ')} (interleaved)\n`);

  const runs: RunRecord[] = [];
  const startups = new Map<string, number[]>(cfgs.map((c) => [c.id, []]));
  let reference: RunRecord | undefined;
  const check = (r: RunRecord) => {
    if (r.output.lines !== m.events) {
      throw new BenchFailure(
        `${r.config} (round ${r.round}) wrote ${r.output.lines} lines, expected ${m.events}`,
      );
    }
    if (reference !== undefined && !sameDigest(r.output, reference.output)) {
      throw new BenchFailure(
        `${r.config} (round ${r.round}) output differs from the baseline's: ` +
          `${r.output.lines} lines, digest ${r.output.hash} vs ${reference.output.lines} lines, ` +
          `digest ${reference.output.hash}`,
      );
    }
  };
  for (let round = 1; round <= rounds; round++) {
    // Rotate the starting configuration so none always runs first (or right after another).
    const order = cfgs.map((_, i) => cfgs[(i + round - 1) % cfgs.length]!);
    for (const cfg of order) {
      // Round 1 starts with the baseline, whose output becomes the reference.
      const r = await runOnce(cfg, round, data.dir, m.events, keepOutput, check);
      runs.push(r);
      reference ??= r;
      const cpu = r.cpuMs === undefined ? '' : `cpu ${fmtSec(r.cpuMs).padStart(6)} s  `;
      console.log(
        `  round ${round}  ${cfg.id.padEnd(10)} ${fmtInt(r.eventsPerSec).padStart(11)} ev/s  ` +
          `job ${fmtSec(r.durationMs).padStart(6)} s  wall ${fmtSec(r.wallMs).padStart(6)} s  ${cpu}` +
          `peak RSS ${(r.maxRssBytes / MiB).toFixed(0).padStart(5)} MiB  output ok (${r.output.files} file(s))`,
      );
      if (cfg.id !== 'baseline') {
        const startup = await startupOnce(cfg, round);
        startups.get(cfg.id)!.push(startup);
        console.log(
          `  round ${round}  ${cfg.id.padEnd(10)} empty input: job ${fmtSec(startup).padStart(6)} s (start-up)`,
        );
      }
    }
  }

  const base = runs.filter((r) => r.config === 'baseline');
  const baseThroughput = median(base.map((r) => r.eventsPerSec));
  const baseWall = median(base.map((r) => r.wallMs));
  const baseRss = median(base.map((r) => r.maxRssBytes));
  const summaries: ConfigSummary[] = cfgs.map((cfg) => {
    const rs = runs.filter((r) => r.config === cfg.id);
    const eventsPerSec = median(rs.map((r) => r.eventsPerSec));
    const wallMs = median(rs.map((r) => r.wallMs));
    const rss = median(rs.map((r) => r.maxRssBytes));
    const durationMs = median(rs.map((r) => r.durationMs));
    const startupMs = cfg.id === 'baseline' ? 0 : median(startups.get(cfg.id)!);
    const cpus = rs.flatMap((r) => (r.cpuMs === undefined ? [] : [r.cpuMs]));
    return {
      config: cfg.id,
      label: cfg.label,
      runs: rs.length,
      medianEventsPerSec: eventsPerSec,
      medianDurationMs: durationMs,
      medianWallMs: wallMs,
      medianCpuMs: median(cpus),
      medianStartupMs: startupMs,
      eventsPerSecAfterStartup: m.events / ((durationMs - startupMs) / 1000),
      medianMaxRssBytes: rss,
      throughputVsBaseline: eventsPerSec / baseThroughput,
      wallSpeedupVsBaseline: baseWall / wallMs,
      rssVsBaseline: rss / baseRss,
    };
  });

  console.log(
    `\nmedians of ${rounds} run(s); outputs of all runs identical (line-multiset digest)\n`,
  );
  console.log(
    table(
      [
        'config',
        'events/s',
        'job s',
        'wall s',
        'peak RSS MiB',
        'throughput vs baseline',
        'wall speedup',
        'RSS vs baseline',
        'CPU s',
        'start-up s',
        'events/s after start-up',
        'vs baseline',
      ],
      summaries.map((s) => [
        s.label,
        fmtInt(s.medianEventsPerSec),
        fmtSec(s.medianDurationMs),
        fmtSec(s.medianWallMs),
        (s.medianMaxRssBytes / MiB).toFixed(0),
        fmtRatio(s.throughputVsBaseline),
        fmtRatio(s.wallSpeedupVsBaseline),
        fmtRatio(s.rssVsBaseline),
        Number.isNaN(s.medianCpuMs) ? '-' : fmtSec(s.medianCpuMs),
        fmtSec(s.medianStartupMs),
        fmtInt(s.eventsPerSecAfterStartup),
        fmtRatio(s.eventsPerSecAfterStartup / baseThroughput),
      ]),
    ),
  );
  console.log(
    '\nevents/s = events / job time (the duration each program reports in its stats file; for eddy\n' +
      'it includes starting its worker threads). wall = whole child process, startup included.\n' +
      'Ratios > 1 mean faster than the baseline (RSS: > 1 means more memory). CPU s = user +\n' +
      "system time of the whole process, all threads (GNU time). start-up s = eddy's job time over\n" +
      'an empty input (one run per round); events/s after start-up = events / (job s - start-up s).',
  );

  const resultsDir = join(DATA_ROOT, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const resultFile = join(resultsDir, `keyed-sum-${date.toISOString().replace(/[:.]/g, '-')}.json`);
  const result = {
    bench: 'keyed-sum',
    date: date.toISOString(),
    machine: host,
    data: {
      ...params,
      bytes: m.bytes,
      dir: relative(REPO, data.dir),
      outputDigest: reference?.output,
    },
    rounds,
    configs: cfgs.map(({ id, label, parallelism }) => ({ id, label, parallelism })),
    summary: summaries,
    runs,
  };
  writeFileSync(resultFile, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nresults: ${relative(REPO, resultFile)}`);
  return 0;
};

export const main = benchMain('keyed-sum', benchmark);
