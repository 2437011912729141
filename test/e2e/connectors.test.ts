/**
 * The server connectors end to end, through the real CLI, the example jobs and real servers
 * (test/servers): NATS JetStream → keyed running total → PostgreSQL, and Redis Streams →
 * running total → Redis Stream, exactly once across kill -9 + --resume, a stop with a
 * savepoint restored at a higher parallelism, a live rescale, and a NATS server restart.
 *
 * Kill points are drawn from a seeded PRNG: the seed is in every test's name; rerun one with
 * EDDY_TEST_SEED=<seed>. Every wait is for a condition (a checkpoint line on the job's
 * stderr, rows committed); the one fixed pause is the length of the NATS outage.
 *
 * Exactly once is checked per user: running totals of positive amounts are all distinct, so
 * a duplicated or lost record shows as a row count, a repeated total or a wrong largest total.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ServerHandle, startNats, startPostgres, startRedis } from '../servers/index.js';
import { EDDY, eddy, ROOT, type RunResult, tempDir } from './helpers.js';

const SEED = Number(process.env.EDDY_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
const prng = (seed: number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
};

interface Event {
  user: string;
  amount: number;
}

const USERS = 5;

/** `n` events over `subjects` channels: [channel index, event]; amounts 1..9. */
const makeEvents = (n: number, channels: number, random: () => number) =>
  Array.from({ length: n }, () => {
    const channel = Math.floor(random() * channels);
    const event: Event = {
      user: `u${Math.floor(random() * USERS)}`,
      amount: 1 + Math.floor(random() * 9),
    };
    return [channel, event] as const;
  });

/** Per user: how many events and the sum of their amounts. */
const expectedPerUser = (events: readonly (readonly [number, Event])[]) => {
  const per = new Map<string, { n: number; sum: number }>();
  for (const [, e] of events) {
    const u = per.get(e.user) ?? { n: 0, sum: 0 };
    per.set(e.user, { n: u.n + 1, sum: u.sum + e.amount });
  }
  return Object.fromEntries([...per].sort(([a], [b]) => a.localeCompare(b)));
};

/** What the output holds per user: rows, distinct totals and the largest total. */
const summarize = (rows: readonly { user: string; total: number }[]) => {
  const per = new Map<string, number[]>();
  for (const r of rows) per.set(r.user, [...(per.get(r.user) ?? []), r.total]);
  return Object.fromEntries(
    [...per]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([user, totals]) => [
        user,
        { n: totals.length, distinct: new Set(totals).size, max: Math.max(...totals) },
      ]),
  );
};

/** The exact output: one row per event, totals distinct, the largest = the user's sum. */
const exactly = (expected: ReturnType<typeof expectedPerUser>) =>
  Object.fromEntries(
    Object.entries(expected).map(([user, { n, sum }]) => [user, { n, distinct: n, max: sum }]),
  );

/** A consistent prefix: no user has more rows than events, no repeated total, no total > sum. */
const expectConsistentPrefix = (
  seen: ReturnType<typeof summarize>,
  expected: ReturnType<typeof expectedPerUser>,
  what: string,
) => {
  for (const [user, s] of Object.entries(seen)) {
    const e = expected[user];
    expect(e, `${what}: unknown user ${user}`).toBeDefined();
    expect(s.distinct, `${what}: repeated totals of ${user}`).toBe(s.n);
    expect(s.n, `${what}: rows of ${user}`).toBeLessThanOrEqual(e!.n);
    expect(s.max, `${what}: largest total of ${user}`).toBeLessThanOrEqual(e!.sum);
  }
};

/** `p`, or a rejection with `explain()` after `ms` (a hang fails with what was seen). */
const within = <T>(p: Promise<T>, ms: number, explain: () => string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`after ${ms} ms: ${explain()}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
};

/** A running `eddy run`: its stderr so far, and when it ends. */
interface Job {
  readonly child: ChildProcess;
  readonly done: Promise<RunResult>;
  /** `done`, failing (with the job's stderr) if the job runs `ms` longer. */
  finished(ms?: number): Promise<RunResult>;
  /** Runs an eddy control command (stop, rescale) failing if it hangs, naming the job's stderr. */
  control(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult>;
  stderr(): string;
  /** Resolves with the job id from the start line. */
  id(): Promise<string>;
  /** Resolves once the job's stderr matches `re`. */
  printed(re: RegExp): Promise<void>;
  /** Resolves once the job has printed `checkpoint N completed` `count` times. */
  checkpoints(count: number): Promise<void>;
}

/** Jobs still running: killed after each test, so a failed test leaves none behind. */
const live = new Set<ChildProcess>();

const startJob = (args: string[], env: NodeJS.ProcessEnv): Job => {
  const child = spawn(process.execPath, [EDDY, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let stdout = '';
  let stderr = '';
  let exited = false;
  const waiters = new Set<() => void>();
  const changed = () => {
    for (const w of waiters) w();
  };
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
    changed();
  });
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      live.delete(child);
      exited = true;
      changed();
      resolve({ code, signal, stdout, stderr });
    });
  });
  /** Resolves with `test(stderr)` once it is not undefined; rejects if the job exits first. */
  const when = <T>(what: string, test: (s: string) => T | undefined) =>
    within(
      new Promise<T>((resolve, reject) => {
        const check = () => {
          const v = test(stderr);
          if (v !== undefined) {
            waiters.delete(check);
            resolve(v);
          } else if (exited) {
            waiters.delete(check);
            reject(new Error(`the job exited before ${what}; stderr:\n${stderr}`));
          }
        };
        waiters.add(check);
        check();
      }),
      30_000,
      () => `no ${what} yet; the job's stderr:\n${stderr}`,
    );
  return {
    child,
    done,
    finished: (ms = 30_000) =>
      within(done, ms, () => `the job has not ended; its stderr:\n${stderr}`),
    control: (args, env) =>
      within(
        eddy(args, undefined, env),
        20_000,
        () => `\`eddy ${args.join(' ')}\` has not returned; the job's stderr:\n${stderr}`,
      ),
    stderr: () => stderr,
    printed: (re) =>
      when(`a line matching ${re}`, (s) => (re.test(s) ? true : undefined)).then(() => {}),
    id: () => when('printing its id', (s) => /job ([0-9a-f-]{36}) \(/.exec(s)?.[1]),
    checkpoints: (count) =>
      when(`${count} completed checkpoint(s)`, (s) =>
        (s.match(/checkpoint \d+ completed/g) ?? []).length >= count ? true : undefined,
      ).then(() => {}),
  };
};

/** A kill point: `ms` after the run's `checkpoint`-th completed checkpoint. */
interface KillPoint {
  readonly checkpoint: number;
  readonly ms: number;
}

/** Two kill points from the PRNG: after checkpoint 1-3 of the run, 0-299 ms later. */
const drawKills = (random: () => number): KillPoint[] =>
  [0, 1].map(() => ({ checkpoint: 1 + Math.floor(random() * 3), ms: Math.floor(random() * 300) }));

const describeKills = (seed: number, kills: readonly KillPoint[]) =>
  `seed ${seed}, kills ${kills.map((k) => `${k.ms} ms after checkpoint #${k.checkpoint}`).join(' and ')} of a run`;

/** Runs a job and kills it with SIGKILL at `at` (after a completed checkpoint of this run). */
const killAfterCheckpoint = async (args: string[], env: NodeJS.ProcessEnv, at: KillPoint) => {
  const job = startJob(args, env);
  await job.checkpoints(at.checkpoint);
  await delay(at.ms);
  job.child.kill('SIGKILL');
  const r = await job.finished();
  // The job must still have been running: a kill after the end would test nothing.
  const when = `${at.ms} ms after checkpoint #${at.checkpoint}`;
  expect(r.signal, `the job ended before the kill ${when}:\n${r.stderr}`).toBe('SIGKILL');
};

/** Polls `read` until `ok` holds (or throws after `ms`, with `explain()` in the message). */
const waitFor = async <T>(
  what: string,
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  ms = 30_000,
  explain: (last: T) => string = (last) => `last seen: ${JSON.stringify(last)}`,
) => {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}; ${explain(v)}`);
    }
    await delay(25);
  }
};

const isolatedEnv = () => ({ ...process.env, EDDY_HOME: tempDir('eddy-home-') });

let nats: ServerHandle;
let redis: ServerHandle;
let postgres: ServerHandle;
let db: pg.Client;

beforeAll(async () => {
  [nats, redis, postgres] = await Promise.all([startNats(), startRedis(), startPostgres()]);
  db = new pg.Client({ connectionString: postgres.url });
  await db.connect();
});

afterEach(() => {
  for (const child of live) child.kill('SIGKILL');
});

afterAll(async () => {
  await db?.end().catch(() => {});
  await Promise.all([nats?.destroy(), redis?.destroy(), postgres?.destroy()]);
});

/**
 * Creates stream `name` on subjects `<name>.*` and publishes the events (channel i →
 * `<name>.s<i>`). `storage`: 'file' where the stream must survive a server restart. Otherwise
 * 'memory': nats-server 2.9's file store served pull consumers at ~100 messages/s on a loaded
 * 2-core machine (a memory stream: 1000 in < 1 s, measured side by side), so the job's pace was
 * the store's and not the connector's.
 */
const publishToNats = async (
  name: string,
  events: readonly (readonly [number, Event])[],
  storage: 'memory' | 'file',
) => {
  const nc = await natsConnect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name,
      subjects: [`${name}.*`],
      storage: storage === 'memory' ? StorageType.Memory : StorageType.File,
    });
    const js = jetstream(nc);
    const encoder = new TextEncoder();
    for (let i = 0; i < events.length; i += 5000) {
      await Promise.all(
        events
          .slice(i, i + 5000)
          .map(([c, e]) => js.publish(`${name}.s${c}`, encoder.encode(JSON.stringify(e)))),
      );
    }
  } finally {
    await nc.close();
  }
};

const tableRows = async (table: string) => {
  const exists = await db.query('SELECT to_regclass($1) AS t', [table]);
  if (exists.rows[0].t === null) return [];
  const r = await db.query<{ user: string; total: number }>(`SELECT "user", total FROM ${table}`);
  return r.rows;
};

const preparedTransactions = async () =>
  Number((await db.query('SELECT count(*) AS n FROM pg_prepared_xacts')).rows[0].n);

const natsArgs = (stateDir: string) => [
  'run',
  'examples/nats-to-postgres.ts',
  '--no-progress',
  '--checkpoint-interval',
  '200',
  '--state-dir',
  stateDir,
];
const natsJobArgs = (stream: string, table: string, rate: number) => [
  '--',
  '--nats',
  nats.url,
  '--stream',
  stream,
  '--postgres',
  postgres.url,
  '--table',
  table,
  '--bounded',
  '--rate',
  String(rate),
];

describe('NATS JetStream → PostgreSQL (examples/nats-to-postgres.ts)', () => {
  it(`kill -9 twice + --resume, stop --savepoint at p=2, --from-savepoint at p=3: exactly once (seed ${SEED})`, async () => {
    const random = prng(SEED);
    const events = makeEvents(20_000, 3, random);
    const expected = expectedPerUser(events);
    await publishToNats('EVA', events, 'memory');
    const env = isolatedEnv();
    const stateDir = tempDir('eddy-state-');
    const run = (extra: string[]) => [
      ...natsArgs(stateDir),
      ...extra,
      ...natsJobArgs('EVA', 'totals_a', 4000),
    ];
    const kills = drawKills(random);
    const context = describeKills(SEED, kills);
    for (const at of kills) {
      await killAfterCheckpoint(run(['-p', '2', '--resume']), env, at);
      expectConsistentPrefix(summarize(await tableRows('totals_a')), expected, context);
    }

    const job = startJob(run(['-p', '2', '--resume']), env);
    const id = await job.id();
    await job.checkpoints(1);
    const stop = await job.control(['stop', id, '--savepoint'], env);
    expect(stop.code, stop.stderr).toBe(0);
    const savepoint = stop.stdout.trim().split('\n').pop()!;
    expect(savepoint).toMatch(/savepoint-nats-to-postgres-\d+-/);
    const stopped = await job.finished();
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stderr).toMatch(/resuming from .*chk-\d+/);
    const partial = summarize(await tableRows('totals_a'));
    expectConsistentPrefix(partial, expected, context);
    const rowsAtStop = Object.values(partial).reduce((a, s) => a + s.n, 0);
    expect(rowsAtStop, `${context}: the stop came after the end`).toBeLessThan(events.length);

    // The rest of the 20 000 events at 4000/s is ≥ 4 s; with the process start and the restore
    // it took ~20 s on a loaded 2-core machine (load ~12). The bound only catches a hang.
    const last = await startJob(run(['-p', '3', '--from-savepoint', savepoint]), env).finished(
      60_000,
    );
    expect(last.code, last.stderr).toBe(0);
    expect(last.stderr).toMatch(/finished in/);
    expect(summarize(await tableRows('totals_a')), context).toEqual(exactly(expected));
    expect(await preparedTransactions()).toBe(0);
    // Four job processes one after the other: ~23 s serially, 55-60 s at load ~10-12.
  }, 180_000);

  it(`the NATS server stops for ~1.5 s mid-run: nothing lost, nothing duplicated (seed ${SEED})`, async () => {
    const events = makeEvents(10_000, 3, prng(SEED + 1));
    const expected = expectedPerUser(events);
    // A file stream: it must survive the server's restart.
    await publishToNats('EVC', events, 'file');
    const env = isolatedEnv();
    const job = startJob(
      [...natsArgs(tempDir('eddy-state-')), '-p', '2', ...natsJobArgs('EVC', 'totals_c', 3000)],
      env,
    );
    try {
      const rows = await waitFor(
        'rows committed in totals_c',
        () => tableRows('totals_c'),
        (r) => r.length > 0,
      );
      expect(rows.length, 'the outage came after the end').toBeLessThan(events.length);
      await nats.stop();
      // The outage itself: the server is away for this long (not a synchronisation).
      await delay(1500);
    } finally {
      // Also when a check above failed: the other tests need the server (a no-op if running).
      await nats.start();
    }
    const r = await job.finished();
    expect(r.code, r.stderr).toBe(0);
    expect(summarize(await tableRows('totals_c'))).toEqual(exactly(expected));
    expect(await preparedTransactions()).toBe(0);
  });
});

describe('Redis Streams → Redis Stream (examples/redis-pipeline.ts)', () => {
  // Unbounded, so the job is surely still running when the rescale (which first starts the new
  // worker threads, seconds on a loaded machine) stops it; more input arrives after the stop.
  it(`unbounded: kill -9 twice + --resume, eddy rescale 2 → 3, more input, eddy stop: exactly once (seed ${SEED})`, async () => {
    const random = prng(SEED + 2);
    const events = makeEvents(15_000, 3, random);
    const [early, late] = [events.slice(0, 12_000), events.slice(12_000)];
    const expected = expectedPerUser(events);
    const client = new Redis(redis.url);
    try {
      const append = async (batch: typeof events) => {
        const pipeline = client.pipeline();
        for (const [c, e] of batch) pipeline.xadd(`in-b${c}`, '*', 'data', JSON.stringify(e));
        await pipeline.exec();
      };
      const output = async () =>
        (await client.xrange('out-b', '-', '+')).map(([, fields]) => {
          expect(fields[0]).toBe('data');
          return JSON.parse(fields[1]!) as { user: string; total: number };
        });
      await append(early);
      const env = isolatedEnv();
      const stateDir = tempDir('eddy-state-');
      const run = (extra: string[]) => [
        'run',
        'examples/redis-pipeline.ts',
        '--no-progress',
        '--checkpoint-interval',
        '200',
        '--state-dir',
        stateDir,
        ...extra,
        '--',
        '--redis',
        redis.url,
        '--streams',
        'in-b0,in-b1,in-b2',
        '--output-stream',
        'out-b',
        '--rate',
        '4000',
      ];
      const kills = drawKills(random);
      const context = describeKills(SEED + 2, kills);
      for (const at of kills) {
        await killAfterCheckpoint(run(['-p', '2', '--resume']), env, at);
        expectConsistentPrefix(summarize(await output()), expected, context);
      }

      const job = startJob(run(['-p', '2', '--resume']), env);
      const id = await job.id();
      await job.checkpoints(1);
      // `eddy rescale` returns when the new generation has processed a record: the late input
      // goes in once the old generation has stopped with its savepoint (so the rescaled job
      // at p=3 reads it, continuing the restored totals).
      const rescaled = job.control(['rescale', id, '3'], env);
      rescaled.catch(() => {}); // awaited below; a failure meanwhile is not unhandled
      await job.printed(/savepoint \d+ completed: .*rescales/);
      await append(late);
      const rescale = await rescaled;
      expect(rescale.code, `${rescale.stderr}\n--- the job's stderr ---\n${job.stderr()}`).toBe(0);
      await waitFor(
        `all ${events.length} entries in out-b`,
        () => client.xlen('out-b'),
        (n) => n >= events.length,
        30_000,
        (n) => `${n} entries; the job's stderr:\n${job.stderr()}`,
      );
      const stop = await job.control(['stop', id], env);
      expect(stop.code, stop.stderr).toBe(0);
      const r = await job.finished();
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/rescaling: stopping with a savepoint/);
      expect(summarize(await output()), context).toEqual(exactly(expected));
    } finally {
      client.disconnect();
    }
  });
});
