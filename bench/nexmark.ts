/**
 * nexmark benchmark: events per second of each Nexmark query job (examples/nexmark) at
 * parallelism 1 and 2, with the state size and peak RSS, beside Flink 1.13's published
 * per-core figures.
 *
 *   npm run bench -- nexmark [--quick] [--events 10000000] [--queries q0,q5] [--rounds 1]
 *
 * Events come from the Nexmark generator source (`-- --events N`), so disk reads do not
 * dominate, and results go to a sink that drops them (`--blackhole`, as Flink's Nexmark uses
 * the blackhole connector), so writing 9M pass-through lines does not either. Every run
 * checkpoints every `--interval` ms (full checkpoints to a temp directory) and the state size
 * is the largest checkpoint's keyed + operator state over all operators, from its _metadata.
 * events/s = events / job time (from `eddy run --stats-file`; includes starting the worker
 * threads); per core = events/s / parallelism. Configurations are interleaved: each round runs
 * every (query, parallelism) once, in an order rotated per round.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  BenchFailure,
  benchMain,
  describeMachine,
  EDDY,
  fmtInt,
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
  watchCheckpoints,
} from './common.js';
import { DATA_ROOT } from './data.js';

/** Flink 1.13, nexmark/nexmark README: throughput per core (8 TaskManagers x 1 slot, RocksDB). */
export const FLINK_113_PER_CORE: Readonly<Record<string, number>> = {
  q0: 155_000,
  q1: 158_000,
  q2: 175_000,
  q3: 152_000,
  q4: 34_000,
  q5: 22_000,
  q7: 12_000,
  q8: 146_000,
  q11: 40_000,
};

const ALL_QUERIES = ['q0', 'q1', 'q2', 'q3', 'q4', 'q5', 'q7', 'q8', 'q11', 'q12'];
const jobOf = (q: string) => join(REPO, 'examples', 'nexmark', `${q}.ts`);

const HELP = `usage: npm run bench -- nexmark [options]

  --quick             smoke run: 200,000 events
  --events <n>        events per run (default 10,000,000)
  --queries <list>    comma-separated (default: every examples/nexmark/q<N>.ts present)
  --parallelism <l>   comma-separated (default 1,2)
  --rounds <n>        rounds; each runs every configuration once (default 1)
  --interval <ms>     checkpoint interval (default 10000)
  --timeout <s>       kill a run after this long (default 1200)
  -h, --help          this help`;

interface RunRecord {
  readonly query: string;
  readonly parallelism: number;
  readonly round: number;
  readonly durationMs: number;
  readonly wallMs: number;
  readonly eventsPerSec: number;
  readonly maxRssBytes: number;
  readonly checkpoints: number;
  /** Largest keyed + operator state of one checkpoint (all operators, all subtasks). */
  readonly maxStateBytes: number;
  readonly maxKeyedBytes: number;
  /** Why the run failed (then its numbers are NaN); the bench goes on with the next one. */
  readonly failed?: string;
}

/** The largest checkpoint's state (keyed + operator, all operators) and keyed state. */
const watchStateSize = (dir: string) => {
  let maxState = 0;
  let maxKeyed = 0;
  const watcher = watchCheckpoints(dir, (meta) => {
    let keyed = 0;
    let operator = 0;
    for (const op of meta.operators) {
      for (const t of op.subtasks) {
        keyed += t.keyed?.bytes ?? 0;
        operator += t.operatorState?.bytes ?? 0;
      }
    }
    maxKeyed = Math.max(maxKeyed, keyed);
    maxState = Math.max(maxState, keyed + operator);
  });
  return { stop: () => ({ checkpoints: watcher.stop(), maxState, maxKeyed }) };
};

const runOnce = async (
  query: string,
  p: number,
  round: number,
  events: number,
  intervalMs: number,
  timeoutMs: number,
): Promise<RunRecord> => {
  const root = mkdtempSync(join(tmpdir(), `eddy-bench-nexmark-${query}-p${p}-`));
  const stats = join(root, 'stats.json');
  const chk = join(root, 'checkpoints');
  const env = join(root, 'home');
  let keep = false;
  try {
    const watcher = watchStateSize(chk);
    process.env.EDDY_HOME = env;
    const child = await runChild(
      [
        EDDY,
        'run',
        jobOf(query),
        '-p',
        String(p),
        '--no-progress',
        '--stats-file',
        stats,
        '--checkpoint-interval',
        String(intervalMs),
        '--checkpoint-dir',
        chk,
        '--',
        '--events',
        String(events),
        '--blackhole',
      ],
      { timeoutMs },
    );
    const watched = watcher.stop();
    const label = `${query} -p ${p} (round ${round})`;
    if (child.code !== 0 || child.timedOut) {
      // One failed run (e.g. out of memory) must not lose the others: recorded and reported.
      keep = true;
      const why = child.timedOut ? 'timed out' : `exit ${child.code ?? child.signal}`;
      console.error(
        `  ${label} FAILED (${why}); kept ${root}\n${child.stderr.trimEnd().slice(-2000)}`,
      );
      return {
        query,
        parallelism: p,
        round,
        durationMs: Number.NaN,
        wallMs: child.wallMs,
        eventsPerSec: Number.NaN,
        maxRssBytes: Number.NaN,
        checkpoints: watched.checkpoints,
        maxStateBytes: watched.maxState,
        maxKeyedBytes: watched.maxKeyed,
        failed: why,
      };
    }
    const s = readRunStats(stats, label);
    if (s.recordsIn !== events) {
      throw new BenchFailure(`${label}: read ${s.recordsIn} events, expected ${events}`);
    }
    return {
      query,
      parallelism: p,
      round,
      durationMs: s.durationMs,
      wallMs: child.wallMs,
      eventsPerSec: events / (s.durationMs / 1000),
      maxRssBytes: s.maxRssBytes,
      checkpoints: watched.checkpoints,
      maxStateBytes: watched.maxState,
      maxKeyedBytes: watched.maxKeyed,
    };
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
  }
};

const fmtBytes = (b: number) =>
  b >= MiB ? `${(b / MiB).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`;
const fmtK = (n: number) => (Number.isFinite(n) ? `${Math.round(n / 1000)}K` : 'failed');

const benchmark = async (argv: string[]): Promise<number> => {
  const values = parseBenchArgs(
    argv,
    {
      quick: { type: 'boolean' },
      events: { type: 'string' },
      queries: { type: 'string' },
      parallelism: { type: 'string' },
      rounds: { type: 'string' },
      interval: { type: 'string' },
      timeout: { type: 'string' },
    },
    HELP,
  );
  if (typeof values === 'number') return values;
  const str = (k: string) => values[k] as string | undefined;
  const quick = values.quick === true;
  const events = positiveInt('events', str('events'), quick ? 200_000 : 10_000_000);
  const rounds = positiveInt('rounds', str('rounds'), 1);
  const intervalMs = positiveInt('interval', str('interval'), 10_000);
  const timeoutMs = positiveInt('timeout', str('timeout'), 1200) * 1000;
  const parallelisms = (str('parallelism') ?? '1,2')
    .split(',')
    .map((s) => positiveInt('parallelism', s.trim(), 1));
  const queries = (
    str('queries')
      ?.split(',')
      .map((q) => q.trim()) ?? ALL_QUERIES
  ).filter((q) => {
    if (existsSync(jobOf(q))) return true;
    if (str('queries') !== undefined) throw new BenchFailure(`no job module ${jobOf(q)}`);
    return false;
  });
  const date = new Date();
  const host = machine();
  const home = process.env.EDDY_HOME;
  console.log(`nexmark benchmark — ${date.toISOString()}`);
  console.log(`machine: ${describeMachine(host)}`);
  console.log(
    `runs: ${fmtInt(events)} generated events each (10,000 events/s of event time), blackhole sink, ` +
      `checkpoint every ${fmtSec(intervalMs)} s; ${rounds} round(s) x ${queries.join(', ')} x p=${parallelisms.join(',')} (interleaved)\n`,
  );
  const configs = queries.flatMap((q) => parallelisms.map((p) => [q, p] as const));
  const runs: RunRecord[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      const order = configs.map((_, i) => configs[(i + round - 1) % configs.length]!);
      for (const [q, p] of order) {
        const r = await runOnce(q, p, round, events, intervalMs, timeoutMs);
        runs.push(r);
        if (r.failed) continue;
        console.log(
          `  round ${round}  ${q.padEnd(4)} p=${p}  ${fmtInt(r.eventsPerSec).padStart(11)} ev/s  ` +
            `job ${fmtSec(r.durationMs).padStart(7)} s  peak RSS ${(r.maxRssBytes / MiB).toFixed(0).padStart(5)} MiB  ` +
            `state ${fmtBytes(r.maxStateBytes)} (${r.checkpoints} checkpoints)`,
        );
      }
    }
  } finally {
    if (home === undefined) delete process.env.EDDY_HOME;
    else process.env.EDDY_HOME = home;
  }
  const summary = queries.map((q) => {
    const at = (p: number) => {
      const rs = runs.filter((r) => r.query === q && r.parallelism === p && !r.failed);
      return {
        parallelism: p,
        eventsPerSec: median(rs.map((r) => r.eventsPerSec)),
        perCore: median(rs.map((r) => r.eventsPerSec)) / p,
        maxRssBytes: median(rs.map((r) => r.maxRssBytes)),
        maxStateBytes: Math.max(0, ...rs.map((r) => r.maxStateBytes)),
      };
    };
    return { query: q, flinkPerCore: FLINK_113_PER_CORE[q], byParallelism: parallelisms.map(at) };
  });
  console.log();
  console.log(
    table(
      [
        'query',
        ...parallelisms.flatMap((p) => [
          `p=${p} ev/s`,
          `p=${p} per core`,
          `p=${p} state`,
          `p=${p} RSS MiB`,
        ]),
        'Flink 1.13 per core (published)',
      ],
      summary.map((s) => [
        s.query,
        ...s.byParallelism.flatMap((b) => [
          Number.isFinite(b.eventsPerSec) ? fmtInt(b.eventsPerSec) : 'failed',
          fmtK(b.perCore),
          fmtBytes(b.maxStateBytes),
          (b.maxRssBytes / MiB).toFixed(0),
        ]),
        s.flinkPerCore === undefined ? '-' : fmtK(s.flinkPerCore),
      ]),
    ),
  );
  console.log(
    '\nFlink figures as published (nexmark/nexmark README: Flink 1.13, 8 TaskManagers x 1 slot,\n' +
      'RocksDB incremental checkpoints every 3 min, exactly-once, events from its generator);\n' +
      'different hardware, not a side-by-side measurement. state = largest checkpoint (keyed +\n' +
      'operator state, all operators).',
  );
  const resultsDir = join(DATA_ROOT, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `nexmark-${date.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        bench: 'nexmark',
        date: date.toISOString(),
        machine: host,
        events,
        intervalMs,
        rounds,
        summary,
        runs,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nresults: ${relative(REPO, file)}`);
  return runs.some((r) => r.failed) ? 1 : 0;
};

export const main = benchMain('nexmark', benchmark);
