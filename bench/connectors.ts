/**
 * connectors benchmark: NATS JetStream → running total per user → PostgreSQL, end to end.
 * `eddy run examples/nats-to-postgres.ts --bounded` (exactly once: checkpoints and two-phase
 * commit) at parallelism 1 and 2, side by side with a hand-written Node consumer doing the
 * same work at least once (bench/baselines/handwritten-nats-postgres.mjs: one ordered
 * JetStream consumer, a Map of totals, batched multi-row INSERTs with autocommit).
 *
 *   npm run bench -- connectors [--rounds 3] [--messages 100000] [--users 1000] [--subjects 4]
 *     [--parallelism 1,2] [--checkpoint-interval 1000] [--nats <url> --postgres <url>]
 *
 * The messages are published once, before the runs; every run reads the whole stream into a
 * fresh table. A run's time is its whole child process, from spawn to exit — for both, the
 * exit comes after the last row is committed — so events/s = messages / that time (startup
 * included: the honest end-to-end number). Every run's table is checked: one row per message,
 * and each user's largest total equal to the sum of the user's amounts. Configurations are
 * interleaved round by round (the starting one rotates).
 *
 * Without --nats/--postgres the servers are started by the test harness (test/servers):
 * nats-server -js, and PostgreSQL with fsync off (commits cost less than on a durable server).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import pg from 'pg';
import { type ServerHandle, startNats, startPostgres } from '../test/servers/index.js';
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
import { DATA_ROOT, mulberry32 } from './data.js';

const BASELINE = join(REPO, 'bench', 'baselines', 'handwritten-nats-postgres.mjs');
const JOB = join(REPO, 'examples', 'nats-to-postgres.ts');
const RUN_TIMEOUT_MS = 10 * 60_000;

const HELP = `usage: npm run bench -- connectors [options]

  --rounds <n>               rounds; each runs every configuration once (default 3)
  --messages <n>             messages published to the stream (default 100000)
  --users <n>                distinct users (default 1000)
  --subjects <n>             subjects of the stream (default 4)
  --parallelism <l>          eddy parallelisms, comma-separated (default 1,2)
  --checkpoint-interval <ms> eddy's checkpoint interval (default 1000)
  --seed <n>                 data seed (default 1)
  --nats <url>               use this NATS server (JetStream on) instead of starting one
  --postgres <url>           use this PostgreSQL (max_prepared_transactions > 0) instead
  -h, --help                 this help`;

interface Config {
  readonly id: string;
  readonly label: string;
  readonly args: (table: string, stats: string, stateDir: string) => string[];
}

interface RunRecord {
  readonly config: string;
  readonly round: number;
  readonly wallMs: number;
  /** The duration the program reports (eddy: the job, without CLI start-up). */
  readonly durationMs: number;
  readonly eventsPerSec: number;
  readonly maxRssBytes: number;
}

interface Expected {
  readonly rows: number;
  readonly perUser: Map<string, { n: number; sum: number }>;
}

/** Publishes the events to a new stream `name` (subjects `<name>.s<i>`). */
const publish = async (
  natsUrl: string,
  name: string,
  params: { messages: number; users: number; subjects: number; seed: number },
): Promise<Expected> => {
  const random = mulberry32(params.seed);
  const perUser = new Map<string, { n: number; sum: number }>();
  const nc = await natsConnect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(name).catch(() => false);
    await jsm.streams.add({ name, subjects: [`${name}.*`] });
    const js = jetstream(nc);
    const encoder = new TextEncoder();
    const window = 5000;
    for (let i = 0; i < params.messages; i += window) {
      const acks: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(params.messages, i + window); j++) {
        const user = `user-${Math.floor(random() * params.users)}`;
        const amount = 1 + Math.floor(random() * 100);
        const u = perUser.get(user) ?? { n: 0, sum: 0 };
        perUser.set(user, { n: u.n + 1, sum: u.sum + amount });
        const subject = `${name}.s${Math.floor(random() * params.subjects)}`;
        acks.push(js.publish(subject, encoder.encode(JSON.stringify({ user, amount }))));
      }
      await Promise.all(acks);
    }
  } finally {
    await nc.close();
  }
  return { rows: params.messages, perUser };
};

/** Checks a run's table: one row per message, each user's row count and largest total. */
const verify = async (db: pg.Client, tableName: string, expected: Expected, what: string) => {
  const r = await db.query<{ user: string; n: string; max: number }>(
    `SELECT "user", count(*) AS n, max(total) AS max FROM "${tableName}" GROUP BY 1`,
  );
  const rows = r.rows.reduce((a, row) => a + Number(row.n), 0);
  if (rows !== expected.rows) {
    throw new BenchFailure(
      `${what}: table ${tableName} has ${rows} rows, expected ${expected.rows}`,
    );
  }
  for (const row of r.rows) {
    const e = expected.perUser.get(row.user);
    if (e === undefined || e.n !== Number(row.n) || e.sum !== row.max) {
      throw new BenchFailure(
        `${what}: user ${row.user} has ${row.n} rows with largest total ${row.max}, expected ` +
          `${e?.n ?? 0} rows and ${e?.sum ?? 'none'}`,
      );
    }
  }
  if (r.rows.length !== expected.perUser.size) {
    throw new BenchFailure(`${what}: ${r.rows.length} users, expected ${expected.perUser.size}`);
  }
};

const benchmark = async (argv: string[]): Promise<number> => {
  const values = parseBenchArgs(
    argv,
    {
      rounds: { type: 'string' },
      messages: { type: 'string' },
      users: { type: 'string' },
      subjects: { type: 'string' },
      parallelism: { type: 'string' },
      'checkpoint-interval': { type: 'string' },
      seed: { type: 'string' },
      nats: { type: 'string' },
      postgres: { type: 'string' },
    },
    HELP,
  );
  if (typeof values === 'number') return values;
  const str = (k: string) => values[k] as string | undefined;
  const rounds = positiveInt('rounds', str('rounds'), 3);
  const params = {
    messages: positiveInt('messages', str('messages'), 100_000),
    users: positiveInt('users', str('users'), 1000),
    subjects: positiveInt('subjects', str('subjects'), 4),
    seed: positiveInt('seed', str('seed'), 1),
  };
  const interval = positiveInt('checkpoint-interval', str('checkpoint-interval'), 1000);
  const parallelisms = (str('parallelism') ?? '1,2')
    .split(',')
    .map((s) => positiveInt('parallelism', s.trim(), 1));
  const date = new Date();
  const host = machine();
  console.log(`connectors benchmark — ${date.toISOString()}`);
  console.log(`machine: ${describeMachine(host)}`);

  const started: ServerHandle[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'eddy-bench-connectors-'));
  // Job registry entries of the runs go to a scratch EDDY_HOME, not the user's.
  process.env.EDDY_HOME = join(scratch, 'home');
  let db: pg.Client | undefined;
  try {
    const natsUrl = str('nats') ?? (await startServer(startNats, started)).url;
    const pgUrl = str('postgres') ?? (await startServer(startPostgres, started)).url;
    console.log(
      `servers: NATS ${natsUrl}${str('nats') ? '' : ' (started)'}, PostgreSQL ` +
        `${pgUrl.replace(/\/\/[^@]*@/, '//')}${str('postgres') ? '' : ' (started, fsync off)'}`,
    );
    const stream = `EDDY_BENCH_${params.seed}`;
    const publishStarted = performance.now();
    const expected = await publish(natsUrl, stream, params);
    console.log(
      `data: ${fmtInt(params.messages)} messages over ${fmtInt(params.users)} users on ` +
        `${params.subjects} subjects of stream ${stream}, seed ${params.seed} ` +
        `(published in ${fmtSec(performance.now() - publishStarted)} s)`,
    );
    db = new pg.Client({ connectionString: pgUrl });
    await db.connect();

    const cfgs: Config[] = [
      {
        id: 'baseline',
        label: 'hand-written Node (at least once)',
        args: (t, stats) => [BASELINE, natsUrl, stream, pgUrl, t, stats],
      },
      ...parallelisms.map(
        (p): Config => ({
          id: `eddy-p${p}`,
          label: `eddy run -p ${p} (exactly once)`,
          args: (t, stats, stateDir) => [
            EDDY,
            'run',
            JOB,
            '-p',
            String(p),
            '--no-progress',
            '--checkpoint-interval',
            String(interval),
            '--state-dir',
            stateDir,
            '--stats-file',
            stats,
            '--',
            '--nats',
            natsUrl,
            '--stream',
            stream,
            '--postgres',
            pgUrl,
            '--table',
            t,
            '--bounded',
          ],
        }),
      ),
    ];
    console.log(
      `runs: ${rounds} round(s) x ${cfgs.map((c) => c.id).join(', ')} (interleaved); ` +
        `eddy checkpoint interval ${interval} ms\n`,
    );

    const runs: RunRecord[] = [];
    for (let round = 1; round <= rounds; round++) {
      const order = cfgs.map((_, i) => cfgs[(i + round - 1) % cfgs.length]!);
      for (const cfg of order) {
        const tableName = `bench_${cfg.id.replace('-', '_')}_r${round}`;
        await db.query(`DROP TABLE IF EXISTS "${tableName}"`);
        const dir = mkdtempSync(join(scratch, `${cfg.id}-`));
        const statsFile = join(dir, 'stats.json');
        const what = `${cfg.label} (round ${round})`;
        const child = await runChild(cfg.args(tableName, statsFile, join(dir, 'state')), {
          timeoutMs: RUN_TIMEOUT_MS,
        });
        if (child.code !== 0) {
          const how = child.timedOut
            ? `a timeout (${RUN_TIMEOUT_MS} ms)`
            : child.signal
              ? `signal ${child.signal}`
              : `exit code ${child.code}`;
          throw new BenchFailure(
            `${what} failed with ${how}\n--- stderr ---\n${child.stderr.trimEnd()}`,
          );
        }
        const stats = readRunStats(statsFile, what);
        await verify(db, tableName, expected, what);
        await db.query(`DROP TABLE "${tableName}"`);
        const record: RunRecord = {
          config: cfg.id,
          round,
          wallMs: child.wallMs,
          durationMs: stats.durationMs,
          eventsPerSec: params.messages / (child.wallMs / 1000),
          maxRssBytes: stats.maxRssBytes,
        };
        runs.push(record);
        console.log(
          `  round ${round}  ${cfg.id.padEnd(9)} ${fmtInt(record.eventsPerSec).padStart(9)} ev/s  ` +
            `wall ${fmtSec(record.wallMs).padStart(6)} s  job ${fmtSec(record.durationMs).padStart(6)} s  ` +
            `peak RSS ${(record.maxRssBytes / MiB).toFixed(0).padStart(4)} MiB  table ok`,
        );
      }
    }

    const base = median(runs.filter((r) => r.config === 'baseline').map((r) => r.eventsPerSec));
    const summary = cfgs.map((cfg) => {
      const rs = runs.filter((r) => r.config === cfg.id);
      const eventsPerSec = median(rs.map((r) => r.eventsPerSec));
      return {
        config: cfg.id,
        label: cfg.label,
        runs: rs.length,
        medianEventsPerSec: eventsPerSec,
        medianWallMs: median(rs.map((r) => r.wallMs)),
        medianDurationMs: median(rs.map((r) => r.durationMs)),
        medianMaxRssBytes: median(rs.map((r) => r.maxRssBytes)),
        throughputVsBaseline: eventsPerSec / base,
      };
    });
    console.log(`\nmedians of ${rounds} run(s); every table checked (rows, per-user totals)\n`);
    console.log(
      table(
        ['config', 'events/s (wall)', 'wall s', 'job s', 'peak RSS MiB', 'vs baseline'],
        summary.map((s) => [
          s.label,
          fmtInt(s.medianEventsPerSec),
          fmtSec(s.medianWallMs),
          fmtSec(s.medianDurationMs),
          (s.medianMaxRssBytes / MiB).toFixed(0),
          fmtRatio(s.throughputVsBaseline),
        ]),
      ),
    );
    console.log(
      '\nevents/s = messages / wall time of the whole child process (spawn to exit, after the\n' +
        'last row is committed). job s = the duration the program reports (eddy: without CLI\n' +
        'start-up). Ratio > 1: faster than the baseline.',
    );
    const resultsDir = join(DATA_ROOT, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const resultFile = join(
      resultsDir,
      `connectors-${date.toISOString().replace(/[:.]/g, '-')}.json`,
    );
    const result = {
      bench: 'connectors',
      date: date.toISOString(),
      machine: host,
      data: { ...params, stream },
      checkpointIntervalMs: interval,
      rounds,
      summary,
      runs,
    };
    writeFileSync(resultFile, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nresults: ${relative(REPO, resultFile)}`);
    return 0;
  } finally {
    await db?.end().catch(() => {});
    await Promise.all(started.map((s) => s.destroy()));
    rmSync(scratch, { recursive: true, force: true });
  }
};

const startServer = async (
  start: () => Promise<ServerHandle>,
  started: ServerHandle[],
): Promise<ServerHandle> => {
  const handle = await start();
  started.push(handle);
  return handle;
};

export const main = benchMain('connectors', benchmark);
