/**
 * state-backends benchmark: the heap and the on-disk keyed state backends side by side, on a
 * count per key (bench/jobs/keyed-count.ts) over 1M, 10M and 100M distinct keys at -p 2 with
 * periodic full checkpoints.
 *
 *   npm run bench -- state-backends [--keys 1000000,10000000,100000000]
 *     [--events-per-key 2,2,1] [--backends heap,disk] [--rounds 1] [--interval 10000]
 *     [--heap-max-keys 10000000] [-p 2] [--quick]
 *
 * Per key count and backend (the backends take turns, the first one rotating each round), a
 * fresh `eddy run` child process; it reports:
 * - throughput: events / the job's own duration (stats file), and the disk/heap ratio;
 * - memory: peak RSS (stats file: the kernel's high-water mark) and, sampled every 200 ms from
 *   /proc/<pid>/status, the peaks of its anonymous part (heaps, buffers: what grows with state
 *   held in memory) and its file-backed part (mapped files: the runtime's code; the disk
 *   store reads its files with pread, so its data is not counted here);
 * - checkpoints: how many completed, the longest synchronous part, the median and longest
 *   asynchronous part, and the size of the last;
 * - restore: the last checkpoint's key groups of subtask 0 of -p 2 (half the key groups) read,
 *   decoded and put into a fresh backend of each kind in this process (heap: decoded eagerly,
 *   as on first use), median of the rounds.
 * Every run's output is checked: exactly ⌈K/1000⌉ sampled keys, each counted exactly E times.
 *
 * Heap runs above `--heap-max-keys` are not started: at 100M keys the heap backend needs more
 * than a worker's V8 heap limit (measured 2026-11-26: 60M keys took 5.7 GB RSS at -p 2).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { forEachKeyGroup, loadMetadata } from '../src/checkpoint/index.js';
import { computeKeyGroupRange } from '../src/keygroups/index.js';
import type { KeyedStateBackend } from '../src/state/backend.js';
import { DiskKeyedStateBackend } from '../src/state/disk/index.js';
import { HeapKeyedStateBackend } from '../src/state/heap-keyed-backend.js';
import { type CheckpointLine, parseCheckpointLog } from './checkpoint-parse.js';
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
  table,
} from './common.js';

const JOB = join(REPO, 'bench', 'jobs', 'keyed-count.ts');
const UID = 'count';
const SAMPLE = 1000;

type Backend = 'heap' | 'disk';

const HELP = `npm run bench -- state-backends [options]

  --keys <list>            distinct keys per run (default 1000000,10000000,100000000)
  --events-per-key <list>  events per key, one per key count or one for all (default 2,2,1)
  --backends <list>        heap,disk (default both)
  --rounds <n>             runs per key count and backend (default 1)
  --interval <ms>          checkpoint interval (default 10000)
  --heap-max-keys <n>      largest key count the heap backend is run with (default 10000000)
  -p <n>                   parallelism (default 2)
  --quick                  100000,1000000 keys, 1 round (a smoke run)`;

interface Memory {
  maxRss: number;
  maxAnon: number;
  maxFile: number;
}

interface Run {
  readonly backend: Backend;
  readonly keys: number;
  readonly events: number;
  readonly eventsPerSec: number;
  readonly durationMs: number;
  readonly memory: Memory;
  readonly checkpoints: readonly CheckpointLine[];
  readonly restoreMs: number | undefined;
  readonly restoreOtherMs: number | undefined;
}

/** Peaks of VmRSS, RssAnon and RssFile of `pid`, sampled until `stop()`. */
const sampleMemory = (pid: number) => {
  const peaks: Memory = { maxRss: 0, maxAnon: 0, maxFile: 0 };
  const read = () => {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      return; // exited
    }
    const kb = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
    peaks.maxRss = Math.max(peaks.maxRss, kb('VmRSS'));
    peaks.maxAnon = Math.max(peaks.maxAnon, kb('RssAnon'));
    peaks.maxFile = Math.max(peaks.maxFile, kb('RssFile'));
  };
  const timer = setInterval(read, 200);
  return {
    peaks,
    stop: () => {
      clearInterval(timer);
    },
  };
};

const runJob = (
  root: string,
  backend: Backend,
  keys: number,
  perKey: number,
  p: number,
  interval: number,
): Promise<{ code: number | null; stderr: string; memory: Memory }> =>
  new Promise((resolve, reject) => {
    const args = [
      EDDY,
      'run',
      JOB,
      '-p',
      String(p),
      '--state-backend',
      backend,
      '--state-dir',
      join(root, 'state'),
      '--checkpoint-interval',
      String(interval),
      '--stats-file',
      join(root, 'stats.json'),
      '--no-progress',
      '--no-ui',
      '--',
      '--keys',
      String(keys),
      '--events-per-key',
      String(perKey),
      '--output',
      join(root, 'out'),
    ];
    const child = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    const sampler = sampleMemory(child.pid!);
    const err: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      sampler.stop();
      resolve({ code, stderr: Buffer.concat(err).toString('utf8'), memory: sampler.peaks });
    });
  });

/** Exactly ⌈K/S⌉ lines, keys u0, uS, u2S, …, each counted `perKey` times. */
const checkOutput = (dir: string, keys: number, perKey: number, label: string): void => {
  const seen = new Set<string>();
  for (const file of readdirSync(dir)) {
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      if (line === '') continue;
      const { key, count } = JSON.parse(line) as { key: string; count: number };
      const k = Number(key.slice(1));
      if (count !== perKey || k % SAMPLE !== 0 || seen.has(key)) {
        throw new BenchFailure(`${label}: wrong output line ${line} in ${join(dir, file)}`);
      }
      seen.add(key);
    }
  }
  const expected = Math.ceil(keys / SAMPLE);
  if (seen.size !== expected) {
    throw new BenchFailure(`${label}: ${seen.size} sampled keys in ${dir}, expected ${expected}`);
  }
};

/** The newest completed checkpoint directory under `<root>/state/checkpoints`. */
const lastCheckpoint = (root: string): string => {
  const dir = join(root, 'state', 'checkpoints');
  const chks = readdirSync(dir)
    .filter((n) => /^chk-\d+$/.test(n))
    .sort((a, b) => Number(b.slice(4)) - Number(a.slice(4)));
  if (chks.length === 0) throw new BenchFailure(`no checkpoint in ${dir}`);
  return join(dir, chks[0]!);
};

/**
 * Restores subtask 0 of -p `p`'s key groups of the checkpoint into a fresh backend of `kind`:
 * read, CRC, decode, put. Checks the entry count against `expectedEntries`.
 */
const timeRestore = async (
  chk: string,
  kind: Backend,
  p: number,
  scratch: string,
): Promise<{ ms: number; entries: number }> => {
  const metadata = await loadMetadata(chk);
  const entry = metadata.operators.find((o) => o.uid === UID);
  if (!entry) throw new BenchFailure(`checkpoint ${chk} has no operator ${UID}`);
  const range = computeKeyGroupRange(entry.maxParallelism, p, 0);
  const options = { keyGroupRange: range, maxParallelism: entry.maxParallelism };
  const started = performance.now();
  const backend: KeyedStateBackend =
    kind === 'heap'
      ? new HeapKeyedStateBackend(options)
      : new DiskKeyedStateBackend({ ...options, dir: join(scratch, 'restore-store') });
  try {
    for (const s of entry.subtasks) {
      if (!s.keyed) continue;
      await forEachKeyGroup(chk, s.keyed, range, (snapshot) => backend.restoreKeyGroup(snapshot));
    }
    const ms = performance.now() - started;
    return { ms, entries: backend.numEntries() };
  } finally {
    backend.dispose();
  }
};

const runOne = async (
  backend: Backend,
  keys: number,
  perKey: number,
  opts: { p: number; interval: number; restoreKinds: readonly Backend[] },
): Promise<Run> => {
  const root = mkdtempSync(join(tmpdir(), `eddy-bench-backends-${backend}-`));
  const label = `${backend}, ${fmtInt(keys)} keys`;
  try {
    const { code, stderr, memory } = await runJob(
      root,
      backend,
      keys,
      perKey,
      opts.p,
      opts.interval,
    );
    if (code !== 0) {
      throw new BenchFailure(`${label}: eddy run exited with ${code}:\n${stderr.slice(-3000)}`);
    }
    const stats = JSON.parse(readFileSync(join(root, 'stats.json'), 'utf8')) as {
      durationMs: number;
      recordsIn: number;
      maxRssBytes: number;
    };
    const events = keys * perKey;
    if (stats.recordsIn !== events) {
      throw new BenchFailure(`${label}: ${stats.recordsIn} records read, expected ${events}`);
    }
    checkOutput(join(root, 'out'), keys, perKey, label);
    memory.maxRss = Math.max(memory.maxRss, stats.maxRssBytes);
    const { completed } = parseCheckpointLog(stderr);
    const chk = lastCheckpoint(root);
    const restores = new Map<Backend, number>();
    for (const kind of opts.restoreKinds) {
      const r = await timeRestore(chk, kind, opts.p, root);
      const range = computeKeyGroupRange(128, opts.p, 0);
      if (r.entries === 0 || r.entries > keys) {
        throw new BenchFailure(
          `${label}: restored ${r.entries} entries of [${range.start}, ${range.end}]`,
        );
      }
      restores.set(kind, r.ms);
    }
    return {
      backend,
      keys,
      events,
      durationMs: stats.durationMs,
      eventsPerSec: events / (stats.durationMs / 1000),
      memory,
      checkpoints: completed,
      restoreMs: restores.get(backend),
      restoreOtherMs: restores.get(backend === 'heap' ? 'disk' : 'heap'),
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
};

const list = (name: string, value: string | undefined, fallback: number[]): number[] =>
  value === undefined ? fallback : value.split(',').map((v) => positiveInt(name, v, 0));

const fmtMiB = (bytes: number) => `${fmtInt(bytes / MiB)} MiB`;

const checkpointCells = (runs: readonly Run[]): string[] => {
  const chks = runs.flatMap((r) => r.checkpoints);
  if (chks.length === 0) return ['0', '-', '-', '-'];
  const asyncMs = chks.map((c) => c.asyncMs);
  return [
    String(median(runs.map((r) => r.checkpoints.length))),
    `${Math.max(...chks.map((c) => c.syncMs)).toFixed(0)} ms`,
    `${fmtSec(median(asyncMs))} / ${fmtSec(Math.max(...asyncMs))} s`,
    fmtMiB(chks.at(-1)!.bytes),
  ];
};

const run = async (argv: string[]): Promise<number> => {
  const values = parseBenchArgs(
    argv,
    {
      keys: { type: 'string' },
      'events-per-key': { type: 'string' },
      backends: { type: 'string' },
      rounds: { type: 'string' },
      interval: { type: 'string' },
      'heap-max-keys': { type: 'string' },
      p: { type: 'string', short: 'p' },
      quick: { type: 'boolean' },
    },
    HELP,
  );
  if (typeof values === 'number') return values;
  const quick = values.quick === true;
  const keyCounts = list(
    'keys',
    values.keys as string | undefined,
    quick ? [100_000, 1_000_000] : [1_000_000, 10_000_000, 100_000_000],
  );
  const perKeys = list(
    'events-per-key',
    values['events-per-key'] as string | undefined,
    quick ? [2] : [2, 2, 1],
  );
  const backends = ((values.backends as string | undefined) ?? 'heap,disk').split(',') as Backend[];
  for (const b of backends) {
    if (b !== 'heap' && b !== 'disk') throw new BenchFailure(`--backends: unknown backend '${b}'`);
  }
  const rounds = positiveInt('rounds', values.rounds as string | undefined, 1);
  const interval = positiveInt('interval', values.interval as string | undefined, 10_000);
  const heapMax = positiveInt(
    'heap-max-keys',
    values['heap-max-keys'] as string | undefined,
    10_000_000,
  );
  const p = positiveInt('p', values.p as string | undefined, 2);
  console.log(`state-backends bench, ${new Date().toISOString()}, ${describeMachine(machine())}`);
  console.log(
    `-p ${p}, checkpoint every ${interval} ms, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
  const results: Run[] = [];
  for (const [i, keys] of keyCounts.entries()) {
    const perKey = perKeys[Math.min(i, perKeys.length - 1)]!;
    const eligible = backends.filter((b) => b !== 'heap' || keys <= heapMax);
    for (let round = 0; round < rounds; round++) {
      const order = eligible.map((_, j) => eligible[(j + round) % eligible.length]!);
      for (const backend of order) {
        // Restore into every eligible kind once per round, from this run's checkpoint.
        const restoreKinds = backend === order[0] ? eligible : [];
        const r = await runOne(backend, keys, perKey, { p, interval, restoreKinds });
        results.push(r);
        const m = r.memory;
        console.log(
          `  ${backend.padEnd(4)} ${fmtInt(keys).padStart(11)} keys, round ${round + 1}: ` +
            `${fmtInt(r.eventsPerSec)} events/s, peak RSS ${fmtMiB(m.maxRss)} (anon ${fmtMiB(m.maxAnon)}, file ${fmtMiB(m.maxFile)}), ` +
            `${r.checkpoints.length} checkpoints` +
            (r.restoreMs === undefined ? '' : `, restore ${fmtSec(r.restoreMs)} s`) +
            (r.restoreOtherMs === undefined
              ? ''
              : ` (other backend ${fmtSec(r.restoreOtherMs)} s)`),
        );
      }
    }
  }
  const rows: string[][] = [];
  for (const keys of keyCounts) {
    const heapRuns = results.filter((r) => r.keys === keys && r.backend === 'heap');
    const heapRate =
      heapRuns.length === 0 ? undefined : median(heapRuns.map((r) => r.eventsPerSec));
    for (const backend of backends) {
      const rs = results.filter((r) => r.keys === keys && r.backend === backend);
      const restores = results
        .filter((r) => r.keys === keys)
        .flatMap((r) => (r.backend === backend ? [r.restoreMs] : [r.restoreOtherMs]))
        .filter((x): x is number => x !== undefined);
      if (rs.length === 0) {
        rows.push([
          fmtInt(keys),
          backend,
          'not run (over --heap-max-keys)',
          '',
          '',
          '',
          '',
          '',
          '',
          '',
          '',
        ]);
        continue;
      }
      const rate = median(rs.map((r) => r.eventsPerSec));
      rows.push([
        fmtInt(keys),
        backend,
        fmtInt(rate),
        heapRate === undefined ? '-' : fmtRatio(rate / heapRate),
        fmtMiB(median(rs.map((r) => r.memory.maxRss))),
        fmtMiB(median(rs.map((r) => r.memory.maxAnon))),
        fmtMiB(median(rs.map((r) => r.memory.maxFile))),
        ...checkpointCells(rs),
        restores.length === 0 ? '-' : `${fmtSec(median(restores))} s`,
      ]);
    }
  }
  console.log(
    `\n${table(
      [
        'keys',
        'backend',
        'events/s',
        'vs heap',
        'peak RSS',
        'peak anon',
        'peak file',
        'chks',
        'max sync',
        'async med / max',
        'last chk',
        'restore ½',
      ],
      rows,
    )}`,
  );
  return 0;
};

export const main = benchMain('state-backends', run);
