/**
 * cluster benchmark (issue 14): keyed-sum across 2 worker processes with 1 task slot each
 * against 2 worker threads of one process.
 *
 *   npm run bench -- cluster [--rounds 5] [--events 1500000] [--checkpoints none,1000]
 *
 * - local: `eddy run examples/keyed-sum.ts -p 2 --workers 2 --no-ui --no-progress -- …`
 *   (subtasks on 2 threads of one process; records cross threads through MessagePorts).
 * - cluster: one `eddy master` and two `eddy worker --slots 1`, started once for the whole
 *   bench (their start-up is not timed), then per run `eddy run examples/keyed-sum.ts --master
 *   H:P -p 2 --no-progress -- …` (the job bundled, submitted and followed; records between the
 *   two worker processes go over TCP).
 *
 * Each configuration also runs with `--checkpoint-interval <ms>` per `--checkpoints` (a fresh
 * checkpoint directory per run). Configurations alternate within a round (the first one
 * rotates each round), each run a fresh child process with a fresh output directory. Before a
 * cluster run the bench waits (untimed) until the master lists both workers with their slot free
 * and no job running. Measured per run from the client's side: wall time of the `eddy run`
 * process, and the summary line it prints (`finished in X s: N records read …, M written …
 * (R rec/s read)`). Every run's output must have one line per event and the same multiset of
 * lines as every other run (order-independent digest), else the bench fails.
 *
 * Every process the bench starts is killed at its end, on failure and on Ctrl-C too. All of
 * them get a temporary EDDY_HOME, so nothing lands in ~/.eddy.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  BenchFailure,
  benchMain,
  type ChildResult,
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
  table,
} from './common.js';
import {
  DATA_ROOT,
  type DigestValue,
  digestDir,
  ensureKeyedSumData,
  type KeyedSumDataParams,
  sameDigest,
} from './data.js';

const JOB = join(REPO, 'examples', 'keyed-sum.ts');

const DEFAULT_DATA: KeyedSumDataParams = {
  // ~3 s for a local -p 2 run on the 2-core bench machine.
  events: 1_500_000,
  users: 100_000,
  files: 8,
  seed: 42,
};

/** No run may take longer than this (a hung cluster run fails the bench instead of hanging it). */
const RUN_TIMEOUT_MS = 10 * 60_000;
/** Start-up of the master and of each worker, and the wait for free slots between runs. */
const READY_TIMEOUT_MS = 60_000;
const PARALLELISM = 2;

const HELP = `usage: npm run bench -- cluster [options]

  --rounds <n>           rounds; each runs every configuration once (default 5)
  --events <n>           events in the data set (default ${DEFAULT_DATA.events})
  --users <n>            distinct users (default ${DEFAULT_DATA.users})
  --files <n>            input files (default ${DEFAULT_DATA.files})
  --seed <n>             data generator seed (default ${DEFAULT_DATA.seed})
  --checkpoints <list>   checkpoint variants, comma-separated: 'none' or an interval in ms
                         (default none,1000)
  --keep-output          keep the runs' output directories (under the OS temp dir)
  -h, --help             this help`;

type Mode = 'local' | 'cluster';

interface Config {
  readonly id: string;
  readonly label: string;
  readonly mode: Mode;
  /** Checkpoint interval in ms, or undefined for none. */
  readonly checkpointMs: number | undefined;
}

interface Summary {
  readonly jobMs: number;
  readonly recordsIn: number;
  readonly recordsOut: number;
  readonly recPerSec: number;
}

interface RunRecord {
  readonly config: string;
  readonly round: number;
  /** Wall time of the `eddy run` process (the client's view: start-up, submit, follow, exit). */
  readonly wallMs: number;
  /** The duration in the client's summary line (local: from starting the threads; cluster: from the submit's acknowledgement). */
  readonly jobMs: number;
  /** rec/s from the summary line. */
  readonly recPerSec: number;
  /** events / wall time. */
  readonly wallEventsPerSec: number;
  /** Spawn to the job id line (see ID_LINE). */
  readonly idLineMs: number;
  /** Wall time neither before the id line nor in the summary's duration (exit, teardown). */
  readonly tailMs: number;
  readonly output: DigestValue & { files: number };
}

// ---------------------------------------------------------------------------------------------
// The summary line

const SUMMARY =
  /finished in ([\d.]+) s: ([\d,]+) records read by sources, ([\d,]+) written by sinks.*\(([\d,]+) rec\/s read\)/;

const num = (s: string) => Number(s.replaceAll(',', ''));

/** Parses `eddy run`'s summary line from its stderr (undefined when there is none). */
export const parseSummary = (stderr: string): Summary | undefined => {
  const m = SUMMARY.exec(stderr);
  if (!m) return undefined;
  return {
    jobMs: Number(m[1]) * 1000,
    recordsIn: num(m[2]!),
    recordsOut: num(m[3]!),
    recPerSec: num(m[4]!),
  };
};

// ---------------------------------------------------------------------------------------------
// Long-running cluster processes

interface ClusterProc {
  readonly name: string;
  readonly child: ChildProcess;
  stderr(): string;
  readonly exited: Promise<void>;
  alive(): boolean;
}

const startProc = (name: string, args: string[]): ClusterProc => {
  const child = spawn(process.execPath, [EDDY, ...args], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    // Keep the start and the recent end: enough for an error report, bounded for a long bench.
    err += d.toString('utf8');
    if (err.length > 256 * 1024) err = `${err.slice(0, 16 * 1024)}\n…\n${err.slice(-128 * 1024)}`;
  });
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  // A spawn error (no node?) surfaces as a dead process in waitFor, not as an unhandled event.
  child.on('error', (e) => {
    err += `\nspawn error: ${e.message}`;
  });
  return {
    name,
    child,
    stderr: () => err,
    exited,
    alive: () => child.exitCode === null && child.signalCode === null,
  };
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `ready` every 50 ms; fails naming `what` if `proc` dies or the time runs out. */
const waitFor = async (
  proc: ClusterProc,
  what: string,
  ready: () => boolean | Promise<boolean>,
): Promise<void> => {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (await ready()) return;
    if (!proc.alive()) {
      throw new BenchFailure(
        `${proc.name} exited while waiting for ${what}:\n${proc.stderr().trimEnd()}`,
      );
    }
    if (Date.now() > deadline) {
      throw new BenchFailure(
        `timed out after ${READY_TIMEOUT_MS} ms waiting for ${what}; ${proc.name}'s stderr:\n${proc.stderr().trimEnd()}`,
      );
    }
    await sleep(50);
  }
};

interface ClusterStatusJson {
  workers: Array<{ id: string; slots: number; freeSlots: number }>;
  jobs: Array<{ id: string; status: string }>;
}

/**
 * The job id line `eddy run` prints first: locally once the job module is loaded (`… started:
 * eddy stop …`), with --master once the job is bundled and the master acknowledged the submit
 * (`… submitted to H:P …`).
 */
const ID_LINE = /\) started: eddy stop|\) submitted to /;

interface TrackedResult extends ChildResult {
  /** When the job id line appeared on stderr, ms after the spawn. */
  readonly idLineMs: number | undefined;
}

/** A master and two single-slot workers; `close()` ends every process it started. */
class BenchCluster {
  readonly procs: ClusterProc[] = [];
  /** `eddy run` and `eddy cluster status` children in flight (killed too on Ctrl-C). */
  private readonly running = new Set<ChildProcess>();
  address = '';

  /**
   * `node <args>` in the repository root, like common.ts's runChild, but tracked so that an
   * interrupted bench kills a run in flight as well.
   */
  run(args: string[], timeoutMs: number): Promise<TrackedResult> {
    return new Promise((resolveRun, reject) => {
      const started = performance.now();
      const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
      this.running.add(child);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      let idLineMs: number | undefined;
      let seen = '';
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.stdout!.on('data', (b: Buffer) => out.push(b));
      child.stderr!.on('data', (b: Buffer) => {
        err.push(b);
        if (idLineMs !== undefined) return;
        seen += b.toString('utf8');
        if (ID_LINE.test(seen)) idLineMs = performance.now() - started;
      });
      child.on('error', (e) => {
        clearTimeout(timer);
        this.running.delete(child);
        reject(e);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        this.running.delete(child);
        resolveRun({
          code,
          signal,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8'),
          wallMs: performance.now() - started,
          timedOut,
          idLineMs,
        });
      });
    });
  }

  async start(): Promise<void> {
    const master = startProc('eddy master', ['master', '--port', '0']);
    this.procs.push(master);
    const listening = /listening on (127\.0\.0\.1:\d+)/;
    await waitFor(master, 'the master to listen', () => listening.test(master.stderr()));
    this.address = listening.exec(master.stderr())![1]!;
    for (let i = 1; i <= PARALLELISM; i++) {
      const w = startProc(`eddy worker w${i}`, [
        'worker',
        '--master',
        this.address,
        '--slots',
        '1',
        '--id',
        `w${i}`,
      ]);
      this.procs.push(w);
      await waitFor(w, `worker w${i} to register`, () =>
        /registered with the master/.test(w.stderr()),
      );
    }
  }

  /** Fails the bench if a cluster process died (a worker lost mid-bench would skew the figures). */
  checkAlive(): void {
    for (const p of this.procs) {
      if (!p.alive()) {
        throw new BenchFailure(`${p.name} exited during the bench:\n${p.stderr().trimEnd()}`);
      }
    }
  }

  async status(): Promise<ClusterStatusJson> {
    const r = await this.run(
      [EDDY, 'cluster', 'status', '--master', this.address, '--json'],
      30_000,
    );
    if (r.code !== 0) {
      throw new BenchFailure(`eddy cluster status failed (${describeExit(r)}):\n${r.stderr}`);
    }
    return JSON.parse(r.stdout) as ClusterStatusJson;
  }

  /** Waits until both workers are registered with their slot free and no job runs. */
  async waitIdle(): Promise<void> {
    let last: ClusterStatusJson | undefined;
    await waitFor(
      this.procs[0]!,
      'the cluster to be idle (2 free slots, no running job)',
      async () => {
        this.checkAlive();
        last = await this.status();
        return (
          last.workers.length === PARALLELISM &&
          last.workers.every((w) => w.freeSlots === w.slots) &&
          last.jobs.every((j) => ['finished', 'stopped', 'failed'].includes(j.status))
        );
      },
    ).catch((e) => {
      if (e instanceof BenchFailure && last) {
        throw new BenchFailure(`${e.message}\nlast status: ${JSON.stringify(last)}`);
      }
      throw e;
    });
  }

  /** SIGTERM (a clean stop), SIGKILL after 5 s for any process still there. */
  async close(): Promise<void> {
    for (const c of this.running) c.kill('SIGKILL');
    for (const p of this.procs) if (p.alive()) p.child.kill('SIGTERM');
    const all = Promise.all(this.procs.map((p) => p.exited));
    const timer = setTimeout(() => {
      for (const p of this.procs) if (p.alive()) p.child.kill('SIGKILL');
    }, 5_000);
    await all;
    clearTimeout(timer);
  }

  /** Last resort at process exit: synchronous, so only SIGKILL. */
  killNow(): void {
    for (const c of this.running) c.kill('SIGKILL');
    for (const p of this.procs) if (p.alive()) p.child.kill('SIGKILL');
  }
}

const describeExit = (r: ChildResult): string =>
  r.timedOut
    ? `killed after ${RUN_TIMEOUT_MS} ms`
    : r.signal
      ? `signal ${r.signal}`
      : `exit code ${r.code}`;

// ---------------------------------------------------------------------------------------------
// Runs

const configs = (checkpoints: ReadonlyArray<number | undefined>): Config[] =>
  checkpoints.flatMap((ms) => {
    const suffix = ms === undefined ? '' : `-chk${ms}`;
    const what = ms === undefined ? '' : `, checkpoint every ${ms} ms`;
    return [
      {
        id: `local${suffix}`,
        label: `local: 1 process, 2 threads${what}`,
        mode: 'local' as const,
        checkpointMs: ms,
      },
      {
        id: `cluster${suffix}`,
        label: `cluster: 2 processes x 1 slot${what}`,
        mode: 'cluster' as const,
        checkpointMs: ms,
      },
    ];
  });

const runArgs = (
  cfg: Config,
  address: string,
  input: string,
  output: string,
  checkpointDir: string,
): string[] => [
  EDDY,
  'run',
  JOB,
  '-p',
  String(PARALLELISM),
  ...(cfg.mode === 'local' ? ['--workers', String(PARALLELISM), '--no-ui'] : ['--master', address]),
  '--no-progress',
  ...(cfg.checkpointMs === undefined
    ? []
    : ['--checkpoint-interval', String(cfg.checkpointMs), '--checkpoint-dir', checkpointDir]),
  '--',
  '--input',
  input,
  '--output',
  output,
];

const runOnce = async (
  cfg: Config,
  round: number,
  cluster: BenchCluster,
  input: string,
  events: number,
  keepOutput: boolean,
  verify: (r: RunRecord) => void,
): Promise<RunRecord> => {
  if (cfg.mode === 'cluster') await cluster.waitIdle();
  const root = mkdtempSync(join(tmpdir(), `eddy-bench-${cfg.id}-`));
  const output = join(root, 'out');
  mkdirSync(output);
  let keep = keepOutput;
  try {
    const child = await cluster.run(
      runArgs(cfg, cluster.address, input, output, join(root, 'checkpoints')),
      RUN_TIMEOUT_MS,
    );
    const fail = (why: string): never => {
      keep = true;
      throw new BenchFailure(
        `${cfg.label} (round ${round}) ${why}; output kept in ${root}\n` +
          `--- stderr ---\n${child.stderr.trimEnd()}\n--- stdout ---\n${child.stdout.trimEnd()}`,
      );
    };
    if (child.code !== 0) fail(`failed with ${describeExit(child)}`);
    const summary = parseSummary(child.stderr) ?? fail('printed no summary line');
    if (summary.recordsIn !== events || summary.recordsOut !== events) {
      fail(`read ${summary.recordsIn} and wrote ${summary.recordsOut} records, expected ${events}`);
    }
    const record: RunRecord = {
      config: cfg.id,
      round,
      wallMs: child.wallMs,
      jobMs: summary.jobMs,
      recPerSec: summary.recPerSec,
      wallEventsPerSec: events / (child.wallMs / 1000),
      idLineMs: child.idLineMs ?? Number.NaN,
      tailMs: child.wallMs - (child.idLineMs ?? Number.NaN) - summary.jobMs,
      output: digestDir(output),
    };
    try {
      verify(record);
    } catch (e) {
      if (e instanceof BenchFailure) fail(e.message);
      throw e;
    }
    return record;
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
    else if (keepOutput) console.log(`    output kept in ${root}`);
  }
};

const parseCheckpoints = (s: string): Array<number | undefined> =>
  s.split(',').map((v) => {
    const t = v.trim();
    return t === 'none' ? undefined : positiveInt('checkpoints', t, 1);
  });

const benchmark = async (argv: string[]): Promise<number> => {
  const values = parseBenchArgs(
    argv,
    {
      rounds: { type: 'string' },
      events: { type: 'string' },
      users: { type: 'string' },
      files: { type: 'string' },
      seed: { type: 'string' },
      checkpoints: { type: 'string' },
      'keep-output': { type: 'boolean' },
    },
    HELP,
  );
  if (typeof values === 'number') return values;
  const str = (k: string) => values[k] as string | undefined;
  const rounds = positiveInt('rounds', str('rounds'), 5);
  const params: KeyedSumDataParams = {
    events: positiveInt('events', str('events'), DEFAULT_DATA.events),
    users: positiveInt('users', str('users'), DEFAULT_DATA.users),
    files: positiveInt('files', str('files'), DEFAULT_DATA.files),
    seed: positiveInt('seed', str('seed'), DEFAULT_DATA.seed),
  };
  const checkpoints = parseCheckpoints(str('checkpoints') ?? 'none,1000');
  const keepOutput = values['keep-output'] === true;
  const date = new Date();
  const host = machine();

  console.log(`cluster benchmark — ${date.toISOString()}`);
  console.log(`machine: ${describeMachine(host)}`);
  const loadStart = loadavg();
  console.log(`load average at start: ${loadStart.map((l) => l.toFixed(2)).join(' ')}`);

  const genStarted = performance.now();
  const data = ensureKeyedSumData(params);
  const m = data.manifest;
  console.log(
    `data: ${fmtInt(m.events)} events over ${fmtInt(m.users)} users in ${m.files} files, ` +
      `${(m.bytes / MiB).toFixed(1)} MiB, seed ${m.seed} — ${relative(REPO, data.dir)} ` +
      (data.cached ? '(cached)' : `(generated in ${fmtSec(performance.now() - genStarted)} s)`),
  );

  // Every child (master, workers, runs, status calls) gets this EDDY_HOME: job logs, the job
  // registry and the master's data stay out of ~/.eddy and go away with the bench.
  const home = mkdtempSync(join(tmpdir(), 'eddy-bench-cluster-home-'));
  const previousHome = process.env.EDDY_HOME;
  process.env.EDDY_HOME = home;
  const cluster = new BenchCluster();
  const onExit = () => cluster.killNow();
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    console.error('\ninterrupted: stopping the cluster processes');
    void cluster.close().finally(() => {
      rmSync(home, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.on('exit', onExit);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const clusterStarted = performance.now();
    await cluster.start();
    console.log(
      `cluster: master at ${cluster.address}, workers w1 and w2 with 1 slot each ` +
        `(started in ${fmtSec(performance.now() - clusterStarted)} s, not timed)`,
    );
    const cfgs = configs(checkpoints);
    console.log(`runs: ${rounds} round(s) x ${cfgs.map((c) => c.id).join(', ')} (interleaved)\n`);

    const runs: RunRecord[] = [];
    let reference: RunRecord | undefined;
    const check = (r: RunRecord) => {
      if (r.output.lines !== m.events) {
        throw new BenchFailure(`wrote ${r.output.lines} lines, expected ${m.events}`);
      }
      if (reference !== undefined && !sameDigest(r.output, reference.output)) {
        throw new BenchFailure(
          `output differs from ${reference.config}'s (round ${reference.round}): ` +
            `${r.output.lines} lines, digest ${r.output.hash} vs ${reference.output.lines} ` +
            `lines, digest ${reference.output.hash}`,
        );
      }
    };
    for (let round = 1; round <= rounds; round++) {
      const order = cfgs.map((_, i) => cfgs[(i + round - 1) % cfgs.length]!);
      for (const cfg of order) {
        const r = await runOnce(cfg, round, cluster, data.dir, m.events, keepOutput, check);
        runs.push(r);
        reference ??= r;
        console.log(
          `  round ${round}  ${cfg.id.padEnd(16)} wall ${fmtSec(r.wallMs).padStart(6)} s  ` +
            `(id line ${fmtSec(r.idLineMs).padStart(5)} s, job ${fmtSec(r.jobMs).padStart(6)} s)  ` +
            `${fmtInt(r.recPerSec).padStart(9)} rec/s  ` +
            `output ok (${fmtInt(r.output.lines)} lines, ${r.output.files} file(s))`,
        );
      }
    }
    cluster.checkAlive();
    const loadEnd = loadavg();

    const med = (id: string, f: (r: RunRecord) => number) =>
      median(runs.filter((r) => r.config === id).map(f));
    const rows = cfgs.map((cfg) => {
      const local = cfg.id.replace(/^cluster/, 'local');
      return {
        config: cfg.id,
        label: cfg.label,
        medianWallMs: med(cfg.id, (r) => r.wallMs),
        medianJobMs: med(cfg.id, (r) => r.jobMs),
        medianRecPerSec: med(cfg.id, (r) => r.recPerSec),
        medianWallEventsPerSec: med(cfg.id, (r) => r.wallEventsPerSec),
        medianIdLineMs: med(cfg.id, (r) => r.idLineMs),
        medianTailMs: med(cfg.id, (r) => r.tailMs),
        /** Cluster wall / local wall at the same checkpoint setting (> 1: the cluster is slower). */
        wallVsLocal: med(cfg.id, (r) => r.wallMs) / med(local, (r) => r.wallMs),
        /** Cluster rec/s / local rec/s (< 1: the cluster is slower). */
        throughputVsLocal: med(cfg.id, (r) => r.recPerSec) / med(local, (r) => r.recPerSec),
        /**
         * Median over the rounds of this round's wall / the same round's local wall: load that
         * drifts between rounds hits both runs of a round alike.
         */
        wallVsLocalPerRound: median(
          runs
            .filter((r) => r.config === cfg.id)
            .map(
              (r) => r.wallMs / runs.find((l) => l.config === local && l.round === r.round)!.wallMs,
            ),
        ),
      };
    });

    console.log(
      `\nmedians of ${rounds} run(s); outputs of all runs identical (line-multiset digest); ` +
        `load average at end: ${loadEnd.map((l) => l.toFixed(2)).join(' ')}\n`,
    );
    console.log(
      table(
        [
          'config',
          'to id line s',
          'job s',
          'tail s',
          'wall s',
          'rec/s (summary)',
          'events/s (wall)',
          'wall vs local',
          'per round',
          'rec/s vs local',
        ],
        rows.map((s) => [
          s.label,
          fmtSec(s.medianIdLineMs),
          fmtSec(s.medianJobMs),
          fmtSec(s.medianTailMs),
          fmtSec(s.medianWallMs),
          fmtInt(s.medianRecPerSec),
          fmtInt(s.medianWallEventsPerSec),
          fmtRatio(s.wallVsLocal),
          fmtRatio(s.wallVsLocalPerRound),
          fmtRatio(s.throughputVsLocal),
        ]),
      ),
    );
    console.log(
      '\nwall = the `eddy run` process from spawn to exit (cluster: bundling, submit, follow; the\n' +
        'master and workers already running) = to id line + job + tail. to id line = spawn to the\n' +
        'job id line (local: job module loaded; cluster: also bundled and the submit acknowledged).\n' +
        'job s and rec/s = the summary line (local: from starting the worker threads; cluster: from\n' +
        'the submit acknowledged to the end event). tail = the rest (exit). per round = median of\n' +
        "each round's cluster wall / that round's local wall. wall vs local > 1 and rec/s vs local\n" +
        '< 1 mean the cluster is slower.',
    );

    const resultsDir = join(DATA_ROOT, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const resultFile = join(resultsDir, `cluster-${date.toISOString().replace(/[:.]/g, '-')}.json`);
    const result = {
      bench: 'cluster',
      date: date.toISOString(),
      machine: host,
      loadAverage: { start: loadStart, end: loadEnd },
      data: {
        ...params,
        bytes: m.bytes,
        dir: relative(REPO, data.dir),
        outputDigest: reference?.output,
      },
      rounds,
      configs: cfgs,
      summary: rows,
      runs,
    };
    writeFileSync(resultFile, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nresults: ${relative(REPO, resultFile)}`);
    return 0;
  } finally {
    await cluster.close();
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (previousHome === undefined) delete process.env.EDDY_HOME;
    else process.env.EDDY_HOME = previousHome;
    rmSync(home, { recursive: true, force: true });
  }
};

export const main = benchMain('cluster', benchmark);
