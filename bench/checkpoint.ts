/**
 * checkpoint benchmark: keyed-sum (`eddy run examples/keyed-sum.ts`) with 1M and 10M keys in
 * state, run without and with periodic checkpoints.
 *
 *   npm run bench -- checkpoint [--keys 1000000,10000000] [--events-per-key 3,1.2]
 *                               [--interval 1000] [--rounds 2] [--quick]
 *
 * Per key count it reports the throughput dip (events/s with checkpoints vs without, same
 * data), the checkpoints' sync and async durations and sizes (parsed from the lines `eddy run`
 * prints on stderr), and their write rate (bytes / async time) against the disk's sequential
 * write rate, measured in the same run with a plain write loop in the same file system.
 * Every run is a fresh child process; the two configurations alternate (the first one rotates
 * each round), and every run's output is checked against the others' with an order-independent
 * digest, so checkpointing must not change the results.
 *
 *   npm run bench -- checkpoint --write-only [--keys 10000000] [--rounds 3]
 *
 * measures the checkpoint writer alone, in this process: a heap keyed backend holding keyed-sum's
 * state (`user-<k>` → an integer sum) for all key groups (as at -p 1: one thread writes the
 * whole checkpoint), snapshotted and written to a file again and again. Per round, side by
 * side: the view encoded in place (what a job does), the view read as snapshot arrays, and the
 * snapshot arrays encoded by msgpackr (the encoder before 2026-11-26). It reports MiB/s (bytes
 * / time from the snapshot to the fsynced file), the synchronous part, and the longest gap
 * between two turns of the event loop while writing: how long the writer stalls processing.
 */

import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import {
  type CheckpointFailure,
  type CheckpointLine,
  parseCheckpointLog,
} from './checkpoint-parse.js';
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

/** The engine version measured: HEAD and whether src/ has uncommitted changes. */
const engineVersion = (): { commit: string; dirtySrc: boolean } => {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    return {
      commit: git('rev-parse', '--short', 'HEAD').trim(),
      dirtySrc: git('status', '--porcelain', '--', 'src').trim() !== '',
    };
  } catch {
    return { commit: 'unknown', dirtySrc: false };
  }
};

const DEFAULTS = {
  keys: [1_000_000, 10_000_000],
  eventsPerKey: [3, 1.2],
  intervalMs: 1000,
  rounds: 2,
  parallelism: 2,
  files: 8,
  seed: 42,
  diskMiB: 1024,
  timeoutSec: 600,
};

const QUICK = { keys: [100_000], eventsPerKey: [3], rounds: 1, diskMiB: 256 };

const WRITE_ONLY = { keys: 10_000_000, rounds: 3, maxParallelism: 128 };

const HELP = `usage: npm run bench -- checkpoint [options]

  --keys <list>            key counts (distinct users in state), comma-separated
                           (default ${DEFAULTS.keys.join(',')})
  --events-per-key <list>  events per key, one value for all key counts or one per key count
                           (default ${DEFAULTS.eventsPerKey.join(',')} with the default keys: 3M and 12M
                           events; ${DEFAULTS.eventsPerKey[0]} with --keys); >= 1, every key appears
  --interval <ms>          checkpoint interval of the checkpointed runs (default ${DEFAULTS.intervalMs})
  --rounds <n>             rounds; each runs keyed-sum without and with checkpoints (default ${DEFAULTS.rounds})
  --parallelism <n>        eddy -p (default ${DEFAULTS.parallelism})
  --files <n>              input files (default ${DEFAULTS.files})
  --seed <n>               data generator seed (default ${DEFAULTS.seed})
  --disk-mib <n>           MiB written by the sequential disk write test (default ${DEFAULTS.diskMiB})
  --timeout <s>            give up on a run (and the rest of its key count) after this long
                           (default ${DEFAULTS.timeoutSec})
  --dir <path>             where outputs, checkpoints and the disk test file go (default: OS temp dir)
  --quick                  smoke run: ${QUICK.keys[0]} keys x ${QUICK.eventsPerKey[0]} events, ${QUICK.rounds} round, ${QUICK.diskMiB} MiB disk test
                           (explicit options still win)
  --keep-output            keep the runs' directories (output, checkpoints, stderr)
  --write-only             only the checkpoint writer, in this process (see the module doc);
                           default ${WRITE_ONLY.keys.toLocaleString('en-US')} keys, ${WRITE_ONLY.rounds} rounds
  -h, --help               this help`;

type ConfigId = 'no-checkpoints' | 'checkpoints';

interface RunRecord {
  readonly config: ConfigId;
  readonly round: number;
  readonly durationMs: number;
  readonly wallMs: number;
  readonly eventsPerSec: number;
  readonly maxRssBytes: number;
  /** 1-minute load average when the run started and ended (other work on the machine). */
  readonly loadAverage: [number, number];
  readonly output: DigestValue & { files: number };
  readonly checkpoints: CheckpointLine[];
  readonly failedCheckpoints: CheckpointFailure[];
  /** Exact on-disk size of the checkpoints still retained at the end, by id. */
  readonly retainedCheckpointBytes: Record<number, number>;
  readonly stats: unknown;
}

interface DiskRate {
  readonly dir: string;
  readonly bytes: number;
  readonly chunkBytes: number;
  /** Time until the last write() returned (page cache). */
  readonly writeMs: number;
  /** Time until fsync() returned: the device's sequential write rate. */
  readonly syncedMs: number;
  readonly bufferedMiBps: number;
  readonly syncedMiBps: number;
}

interface CaseSummary {
  readonly withoutEventsPerSec: number;
  readonly withEventsPerSec: number;
  /** 1 - with / without, in percent (> 0: checkpointing costs throughput). */
  readonly dipPercent: number;
  readonly withoutDurationMs: number;
  readonly withDurationMs: number;
  readonly withoutMaxRssBytes: number;
  readonly withMaxRssBytes: number;
  /** Median over the checkpointed runs. */
  readonly checkpointsPerRun: number;
  readonly failedCheckpoints: number;
  readonly syncMs: { median: number; max: number };
  readonly asyncMs: { median: number; max: number };
  readonly totalMs: { median: number; max: number };
  readonly bytes: { median: number; max: number };
  /** Sum of bytes / sum of async time over all checkpoints, MiB/s. */
  readonly writeMiBps: number;
  /** Median over checkpoints of bytes / async time, MiB/s. */
  readonly medianCheckpointWriteMiBps: number;
  /** writeMiBps / the disk's synced sequential write rate. */
  readonly writeVsDisk: number;
  /** Sum of the checkpoints' sync parts / job duration (median over checkpointed runs). */
  readonly syncShareOfJob: number;
}

interface CaseResult {
  readonly keys: number;
  readonly eventsPerKey: number;
  readonly data: KeyedSumDataParams & { bytes: number; dir: string; generatedInMs?: number };
  readonly disk: DiskRate;
  readonly runs: RunRecord[];
  readonly summary?: CaseSummary;
  /** Why the case stopped early (timeout, out of memory, crash, wrong output). */
  readonly failure?: string;
}

// ---------------------------------------------------------------------------------------------

/** Writes `mib` MiB in 8 MiB chunks to a fresh file in `dir`, fsyncs it, deletes it. */
export const measureDiskWrite = (dir: string, mib: number, chunkMiB = 8): DiskRate => {
  const chunkBytes = chunkMiB * MiB;
  const chunks = Math.max(1, Math.ceil(mib / chunkMiB));
  const chunk = Buffer.allocUnsafe(chunkBytes);
  randomFillSync(chunk); // incompressible
  const file = join(dir, `eddy-bench-disk-${process.pid}-${Date.now()}.tmp`);
  const fd = openSync(file, 'w');
  let bytes = 0;
  let writeMs: number;
  let syncedMs: number;
  try {
    const started = performance.now();
    for (let i = 0; i < chunks; i++) {
      chunk.writeUInt32LE(i, 0); // no two chunks alike (no dedup in the storage layer)
      let off = 0;
      while (off < chunkBytes) off += writeSync(fd, chunk, off, chunkBytes - off);
      bytes += chunkBytes;
    }
    writeMs = performance.now() - started;
    fsyncSync(fd);
    syncedMs = performance.now() - started;
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return {
    dir,
    bytes,
    chunkBytes,
    writeMs,
    syncedMs,
    bufferedMiBps: bytes / MiB / (writeMs / 1000),
    syncedMiBps: bytes / MiB / (syncedMs / 1000),
  };
};

/** Exact sizes of the `chk-<id>` directories left in a checkpoint dir (retention keeps a few). */
const retainedCheckpoints = (dir: string): Record<number, number> => {
  const sizes: Record<number, number> = {};
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return sizes;
  }
  for (const name of entries) {
    const m = /^chk-(\d+)$/.exec(name);
    if (m === null) continue;
    let total = 0;
    for (const f of readdirSync(join(dir, name))) total += statSync(join(dir, name, f)).size;
    sizes[Number(m[1])] = total;
  }
  return sizes;
};

/** A run that did not finish: why, in a few words, plus the end of its stderr. */
class RunFailed extends Error {
  constructor(
    readonly reason: string,
    readonly detail: string,
  ) {
    super(reason);
  }
}

const tail = (text: string, lines = 15) => text.trimEnd().split('\n').slice(-lines).join('\n');

interface RunSpec {
  readonly config: ConfigId;
  readonly round: number;
  readonly input: string;
  readonly events: number;
  readonly parallelism: number;
  readonly intervalMs: number;
  readonly workDir: string;
  readonly timeoutMs: number;
  readonly keepOutput: boolean;
}

const runOnce = async (spec: RunSpec): Promise<RunRecord> => {
  const root = mkdtempSync(join(spec.workDir, `eddy-bench-checkpoint-${spec.config}-`));
  const output = join(root, 'out');
  const checkpoints = join(root, 'checkpoints');
  const statsFile = join(root, 'stats.json');
  mkdirSync(output);
  let keep = spec.keepOutput;
  try {
    const args = [
      EDDY,
      'run',
      JOB,
      '-p',
      String(spec.parallelism),
      '--no-progress',
      '--stats-file',
      statsFile,
      ...(spec.config === 'checkpoints'
        ? ['--checkpoint-interval', String(spec.intervalMs), '--checkpoint-dir', checkpoints]
        : []),
      '--',
      '--input',
      spec.input,
      '--output',
      output,
    ];
    const loadBefore = loadavg()[0]!;
    const child = await runChild(args, { timeoutMs: spec.timeoutMs });
    const loadAfter = loadavg()[0]!;
    writeFileSync(join(root, 'stderr.txt'), child.stderr);
    if (child.code !== 0 || child.timedOut) {
      const oom =
        /heap out of memory|ERR_WORKER_OUT_OF_MEMORY|Reached heap limit|allocation failed/i.test(
          child.stderr,
        ) ||
        (child.signal === 'SIGKILL' && !child.timedOut);
      const reason = child.timedOut
        ? `timed out after ${fmtSec(spec.timeoutMs)} s`
        : oom
          ? `out of memory (${child.signal ? `signal ${child.signal}` : `exit code ${child.code}`})`
          : `failed with ${child.signal ? `signal ${child.signal}` : `exit code ${child.code}`}`;
      keep = true;
      throw new RunFailed(
        reason,
        `stderr (kept in ${root}):\n${tail(child.stderr)}\n${child.stdout.trimEnd()}`,
      );
    }
    const stats = readRunStats(statsFile, 'checkpoint run');
    if (stats.recordsIn !== spec.events) {
      keep = true;
      throw new RunFailed(
        'wrong record count',
        `stats say recordsIn=${stats.recordsIn}, expected ${spec.events}; kept in ${root}`,
      );
    }
    const { completed, failed } = parseCheckpointLog(child.stderr);
    return {
      config: spec.config,
      round: spec.round,
      durationMs: stats.durationMs,
      wallMs: child.wallMs,
      eventsPerSec: spec.events / (stats.durationMs / 1000),
      maxRssBytes: stats.maxRssBytes,
      loadAverage: [loadBefore, loadAfter],
      output: digestDir(output),
      checkpoints: completed,
      failedCheckpoints: failed,
      retainedCheckpointBytes: retainedCheckpoints(checkpoints),
      stats,
    };
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
    else if (spec.keepOutput) console.log(`    kept in ${root}`);
  }
};

// ---------------------------------------------------------------------------------------------

const summarize = (runs: RunRecord[], disk: DiskRate): CaseSummary | undefined => {
  const without = runs.filter((r) => r.config === 'no-checkpoints');
  const withChk = runs.filter((r) => r.config === 'checkpoints');
  if (without.length === 0 || withChk.length === 0) return undefined;
  const chks = withChk.flatMap((r) => r.checkpoints);
  const stat = (xs: number[]) => ({
    median: median(xs),
    max: xs.length === 0 ? Number.NaN : Math.max(...xs),
  });
  const totalBytes = chks.reduce((s, c) => s + c.bytes, 0);
  const totalAsyncMs = chks.reduce((s, c) => s + c.asyncMs, 0);
  const writeMiBps = totalBytes / MiB / (totalAsyncMs / 1000);
  const withoutEps = median(without.map((r) => r.eventsPerSec));
  const withEps = median(withChk.map((r) => r.eventsPerSec));
  return {
    withoutEventsPerSec: withoutEps,
    withEventsPerSec: withEps,
    dipPercent: (1 - withEps / withoutEps) * 100,
    withoutDurationMs: median(without.map((r) => r.durationMs)),
    withDurationMs: median(withChk.map((r) => r.durationMs)),
    withoutMaxRssBytes: median(without.map((r) => r.maxRssBytes)),
    withMaxRssBytes: median(withChk.map((r) => r.maxRssBytes)),
    checkpointsPerRun: median(withChk.map((r) => r.checkpoints.length)),
    failedCheckpoints: withChk.reduce((s, r) => s + r.failedCheckpoints.length, 0),
    syncMs: stat(chks.map((c) => c.syncMs)),
    asyncMs: stat(chks.map((c) => c.asyncMs)),
    totalMs: stat(chks.flatMap((c) => (c.totalMs === undefined ? [] : [c.totalMs]))),
    bytes: stat(chks.map((c) => c.bytes)),
    writeMiBps,
    medianCheckpointWriteMiBps: median(
      chks.filter((c) => c.asyncMs > 0).map((c) => c.bytes / MiB / (c.asyncMs / 1000)),
    ),
    writeVsDisk: writeMiBps / disk.syncedMiBps,
    syncShareOfJob: median(
      withChk.map((r) => r.checkpoints.reduce((s, c) => s + c.syncMs, 0) / r.durationMs),
    ),
  };
};

const fmtMs = (ms: number) =>
  Number.isNaN(ms) ? '-' : ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
const fmtMiB = (bytes: number) => (Number.isNaN(bytes) ? '-' : (bytes / MiB).toFixed(1));
const fmtRate = (r: number) => (Number.isFinite(r) ? r.toFixed(0) : '-');
const fmtCount = (n: number) =>
  n >= 1e6 && n % 1e5 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 100 === 0 ? `${n / 1e3}k` : fmtInt(n);

const printCase = (c: CaseResult, s: CaseSummary, rounds: number): void => {
  const d = c.disk;
  console.log(
    `\n${fmtCount(c.keys)} keys, ${fmtCount(c.data.events)} events — medians of ${rounds} run(s) per configuration\n`,
  );
  console.log(
    table(
      ['', 'value'],
      [
        ['events/s without checkpoints', fmtInt(s.withoutEventsPerSec)],
        ['events/s with checkpoints', fmtInt(s.withEventsPerSec)],
        ['throughput dip', `${s.dipPercent.toFixed(1)} %`],
        ['job s without / with', `${fmtSec(s.withoutDurationMs)} / ${fmtSec(s.withDurationMs)}`],
        [
          'peak RSS MiB without / with',
          `${(s.withoutMaxRssBytes / MiB).toFixed(0)} / ${(s.withMaxRssBytes / MiB).toFixed(0)}`,
        ],
        [
          'checkpoints completed per run',
          `${s.checkpointsPerRun}${s.failedCheckpoints > 0 ? ` (+${s.failedCheckpoints} failed in all)` : ''}`,
        ],
        ['sync ms median / max', `${fmtMs(s.syncMs.median)} / ${fmtMs(s.syncMs.max)}`],
        ['async ms median / max', `${fmtMs(s.asyncMs.median)} / ${fmtMs(s.asyncMs.max)}`],
        ['total ms median / max', `${fmtMs(s.totalMs.median)} / ${fmtMs(s.totalMs.max)}`],
        ['sync share of job time', `${(s.syncShareOfJob * 100).toFixed(1)} %`],
        ['MiB per checkpoint median / max', `${fmtMiB(s.bytes.median)} / ${fmtMiB(s.bytes.max)}`],
        [
          'checkpoint write MiB/s (all / median)',
          `${fmtRate(s.writeMiBps)} / ${fmtRate(s.medianCheckpointWriteMiBps)}`,
        ],
        [
          'disk seq. write MiB/s (fsync / cache)',
          `${fmtRate(d.syncedMiBps)} / ${fmtRate(d.bufferedMiBps)}`,
        ],
        ['checkpoint write vs disk (fsync)', `${(s.writeVsDisk * 100).toFixed(1)} %`],
      ],
    ),
  );
};

const printOverview = (cases: CaseResult[]): void => {
  const rows = cases.map((c) => {
    const s = c.summary;
    if (s === undefined) {
      return [
        fmtCount(c.keys),
        fmtCount(c.data.events),
        ...Array.from({ length: 10 }, () => '-'),
        fmtRate(c.disk.syncedMiBps),
        c.failure ?? 'no result',
      ];
    }
    return [
      fmtCount(c.keys),
      fmtCount(c.data.events),
      fmtInt(s.withoutEventsPerSec),
      fmtInt(s.withEventsPerSec),
      `${s.dipPercent.toFixed(1)}`,
      String(s.checkpointsPerRun),
      fmtMs(s.syncMs.median),
      fmtMs(s.syncMs.max),
      fmtMs(s.asyncMs.median),
      fmtMs(s.asyncMs.max),
      fmtMiB(s.bytes.median),
      fmtRate(s.writeMiBps),
      fmtRate(c.disk.syncedMiBps),
      `${(s.writeVsDisk * 100).toFixed(1)} %${c.failure ? ` (${c.failure})` : ''}`,
    ];
  });
  console.log('\nsummary\n');
  console.log(
    table(
      [
        'keys',
        'events',
        'ev/s no chk',
        'ev/s chk',
        'dip %',
        'chks',
        'sync med',
        'sync max',
        'async med',
        'async max',
        'MiB med',
        'chk MiB/s',
        'disk MiB/s',
        'chk/disk',
      ],
      rows,
    ),
  );
  console.log(
    '\nevents/s = events / job time (stats file). dip = 1 - with / without. sync/async/total ms\n' +
      'and sizes are what eddy prints per completed checkpoint (sync and async: the longest\n' +
      'subtask/worker; sizes rounded by the printer). chk MiB/s = all checkpoint bytes / all async\n' +
      'time; disk MiB/s = 1 plain sequential write loop in 8 MiB chunks incl. the final fsync, in the\n' +
      'same file system. The checkpointed runs also pay for the exactly-once file sink committing\n' +
      'on every checkpoint, so the dip is the cost of checkpointing as a whole.',
  );
};

const timesText = (events: number, users: number): string => {
  const lo = Math.floor(events / users);
  const hi = Math.ceil(events / users);
  return lo === hi ? `${lo} times` : `${lo} or ${hi} times`;
};

// ---------------------------------------------------------------------------------------------

const numberList = (name: string, value: string, integer: boolean): number[] =>
  value.split(',').map((part) => {
    const n = Number(part.trim().replaceAll('_', ''));
    const ok = integer ? Number.isSafeInteger(n) && n >= 1 : Number.isFinite(n) && n >= 1;
    if (!ok) {
      throw new BenchFailure(
        `--${name} must be a comma-separated list of ${integer ? 'positive integers' : 'numbers >= 1'}, got '${value}'`,
      );
    }
    return n;
  });

// --------------------------------------------------------------------------------------------
// --write-only: the checkpoint writer alone

type WriteVariant = 'in place' | 'snapshot arrays' | 'msgpackr (before)';

interface WriteRound {
  readonly variant: WriteVariant;
  readonly round: number;
  readonly bytes: number;
  readonly ms: number;
  readonly syncMs: number;
  readonly mibPerSec: number;
  /** Longest gap between two turns of the event loop while the file was written. */
  readonly maxStallMs: number;
  /** Gaps of more than 20 ms. */
  readonly stallsOver20: number;
}

/** Measures the longest gaps between turns of the event loop until `stop` is called. */
const stallMonitor = () => {
  let last = performance.now();
  let max = 0;
  let over20 = 0;
  let on = true;
  const tick = () => {
    const now = performance.now();
    const gap = now - last;
    if (gap > max) max = gap;
    if (gap > 20) over20++;
    last = now;
    if (on) setImmediate(tick);
  };
  setImmediate(tick);
  return () => {
    on = false;
    return { max, over20 };
  };
};

const writeOnlyBenchmark = async (opts: {
  keys: number;
  rounds: number;
  workDir: string;
}): Promise<number> => {
  // Imported here: the job benchmark above runs eddy in child processes only.
  const { HeapKeyedStateBackend } = await import('../src/state/heap-keyed-backend.js');
  const { ValueStateDescriptor } = await import('../src/state/descriptors.js');
  const { assignToKeyGroup } = await import('../src/keygroups/index.js');
  const { writeKeyedStateFile } = await import('../src/checkpoint/keyed-file.js');
  const { packBlock } = await import('../src/checkpoint/block-codec.js');
  const date = new Date();
  const host = machine();
  const engine = engineVersion();
  const maxParallelism = WRITE_ONLY.maxParallelism;
  const range = { start: 0, end: maxParallelism - 1 };
  console.log(`checkpoint writer benchmark — ${date.toISOString()}`);
  console.log(`machine: ${describeMachine(host)}`);
  console.log(
    `engine: commit ${engine.commit}${engine.dirtySrc ? ' + uncommitted changes in src/' : ''}`,
  );
  const loadAtStart = loadavg();
  console.log(`load average at start: ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}`);

  const started = performance.now();
  const backend = new HeapKeyedStateBackend({ keyGroupRange: range, maxParallelism });
  const sum = backend.getState(new ValueStateDescriptor<number>('sum', { defaultValue: 0 }));
  for (let k = 0; k < opts.keys; k++) {
    const key = `user-${k}`;
    backend.setCurrentKey(key, assignToKeyGroup(key, maxParallelism));
    sum.update(1 + ((k * 7919) % 3000)); // 1..3000: keyed-sum's totals of 1-3 amounts
  }
  console.log(
    `state: ${fmtInt(opts.keys)} keys in ${maxParallelism} key groups, one backend (as -p 1), ` +
      `filled in ${fmtSec(performance.now() - started)} s`,
  );
  const dir = mkdtempSync(join(opts.workDir, 'eddy-bench-checkpoint-write-'));
  const disk = measureDiskWrite(dir, 1024);
  console.log(
    `disk: ${fmtRate(disk.syncedMiBps)} MiB/s incl. fsync, ${fmtRate(disk.bufferedMiBps)} MiB/s into the page cache`,
  );
  const sources = {
    'in place': (view: ReturnType<typeof backend.snapshotView>) => view,
    'snapshot arrays': (view: ReturnType<typeof backend.snapshotView>) => ({
      keyGroups: view.keyGroups,
      read: (kg: number) => view.read(kg),
    }),
    'msgpackr (before)': (view: ReturnType<typeof backend.snapshotView>) => ({
      keyGroups: view.keyGroups,
      read: (kg: number) => view.read(kg),
      // The encoder before 2026-11-26: msgpackr over the snapshot's arrays (as keyed-block.ts).
      encoded: (kg: number) => {
        const s = view.read(kg);
        return packBlock([s.keyGroup, s.states.map((x) => [x.name, x.kind ?? null, x.entries])]);
      },
    }),
  } as const;
  const rounds: WriteRound[] = [];
  try {
    // Warm-up (not reported): a job's writer is JIT-compiled long before its state is large.
    const warm = new HeapKeyedStateBackend({ keyGroupRange: range, maxParallelism });
    const warmSum = warm.getState(new ValueStateDescriptor<number>('sum', { defaultValue: 0 }));
    for (let k = 0; k < 200_000; k++) {
      const key = `user-${k}`;
      warm.setCurrentKey(key, assignToKeyGroup(key, maxParallelism));
      warmSum.update(k % 3000);
    }
    for (const variant of Object.keys(sources) as WriteVariant[]) {
      for (let i = 0; i < 3; i++) {
        const view = warm.snapshotView();
        await writeKeyedStateFile(dir, 'warm.keyed', range, sources[variant](view));
        view.release();
      }
    }
    warm.dispose();
    for (let round = 1; round <= opts.rounds; round++) {
      const variants = Object.keys(sources) as WriteVariant[];
      // Rotate the order each round: no variant always runs first (cold) or last.
      const order = variants.map((_, i) => variants[(i + round - 1) % variants.length]!);
      for (const variant of order) {
        const file = `r${round}.keyed`;
        const stop = stallMonitor();
        const t0 = performance.now();
        const view = backend.snapshotView();
        const syncMs = performance.now() - t0;
        const handle = await writeKeyedStateFile(dir, file, range, sources[variant](view));
        const ms = performance.now() - t0;
        const stall = stop();
        view.release();
        rmSync(join(dir, file), { force: true });
        const r: WriteRound = {
          variant,
          round,
          bytes: handle.bytes,
          ms,
          syncMs,
          mibPerSec: handle.bytes / MiB / (ms / 1000),
          maxStallMs: stall.max,
          stallsOver20: stall.over20,
        };
        rounds.push(r);
        console.log(
          `  round ${round}  ${variant.padEnd(18)} ${fmtMiB(r.bytes).padStart(7)} MiB in ` +
            `${fmtMs(ms).padStart(6)} ms = ${fmtRate(r.mibPerSec).padStart(4)} MiB/s  ` +
            `sync ${fmtMs(syncMs)} ms  longest stall ${fmtMs(stall.max)} ms (${stall.over20} > 20 ms)`,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    backend.dispose();
  }
  const summary = (Object.keys(sources) as WriteVariant[]).map((variant) => {
    const rs = rounds.filter((r) => r.variant === variant);
    return {
      variant,
      mibPerSec: median(rs.map((r) => r.mibPerSec)),
      ms: median(rs.map((r) => r.ms)),
      maxStallMs: Math.max(...rs.map((r) => r.maxStallMs)),
      medianStallMs: median(rs.map((r) => r.maxStallMs)),
    };
  });
  console.log(`\nmedians of ${opts.rounds} round(s)\n`);
  console.log(
    table(
      ['variant', 'MiB/s', 'ms', 'longest stall ms (median / max)'],
      summary.map((x) => [
        x.variant,
        fmtRate(x.mibPerSec),
        fmtMs(x.ms),
        `${fmtMs(x.medianStallMs)} / ${fmtMs(x.maxStallMs)}`,
      ]),
    ),
  );
  const loadAtEnd = loadavg();
  console.log(`load average at end: ${loadAtEnd.map((l) => l.toFixed(2)).join(' ')}`);
  const resultsDir = join(DATA_ROOT, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const resultFile = join(
    resultsDir,
    `checkpoint-write-${date.toISOString().replace(/[:.]/g, '-')}.json`,
  );
  const result = {
    bench: 'checkpoint --write-only',
    date: date.toISOString(),
    machine: host,
    engine,
    loadAverage: { start: loadAtStart, end: loadAtEnd },
    options: { ...opts, maxParallelism },
    disk,
    rounds,
    summary,
  };
  writeFileSync(resultFile, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nresults: ${relative(REPO, resultFile)}`);
  return 0;
};

const benchmark = async (argv: string[]): Promise<number> => {
  const values = parseBenchArgs(
    argv,
    {
      keys: { type: 'string' },
      'events-per-key': { type: 'string' },
      interval: { type: 'string' },
      rounds: { type: 'string' },
      parallelism: { type: 'string' },
      files: { type: 'string' },
      seed: { type: 'string' },
      'disk-mib': { type: 'string' },
      timeout: { type: 'string' },
      dir: { type: 'string' },
      quick: { type: 'boolean' },
      'keep-output': { type: 'boolean' },
      'write-only': { type: 'boolean' },
    },
    HELP,
  );
  if (typeof values === 'number') return values;
  const str = (k: string) => values[k] as string | undefined;
  if (values['write-only'] === true) {
    const k =
      str('keys') === undefined ? [WRITE_ONLY.keys] : numberList('keys', str('keys')!, true);
    return writeOnlyBenchmark({
      keys: k[0]!,
      rounds: positiveInt('rounds', str('rounds'), WRITE_ONLY.rounds),
      workDir: resolve(str('dir') ?? tmpdir()),
    });
  }
  const quick = values.quick === true;
  const keys =
    str('keys') === undefined
      ? quick
        ? QUICK.keys
        : DEFAULTS.keys
      : numberList('keys', str('keys')!, true);
  const perKeyOpt =
    str('events-per-key') === undefined
      ? quick
        ? QUICK.eventsPerKey
        : str('keys') === undefined
          ? DEFAULTS.eventsPerKey
          : [DEFAULTS.eventsPerKey[0]!]
      : numberList('events-per-key', str('events-per-key')!, false);
  if (perKeyOpt.length !== 1 && perKeyOpt.length !== keys.length) {
    throw new BenchFailure(
      `--events-per-key needs one value or one per key count (${keys.length}), got ${perKeyOpt.length}`,
    );
  }
  const eventsPerKey = keys.map((_, i) => perKeyOpt[perKeyOpt.length === 1 ? 0 : i]!);
  const intervalMs = positiveInt('interval', str('interval'), DEFAULTS.intervalMs);
  const rounds = positiveInt('rounds', str('rounds'), quick ? QUICK.rounds : DEFAULTS.rounds);
  const parallelism = positiveInt('parallelism', str('parallelism'), DEFAULTS.parallelism);
  const files = positiveInt('files', str('files'), DEFAULTS.files);
  const seed = positiveInt('seed', str('seed'), DEFAULTS.seed);
  const diskMiB = positiveInt(
    'disk-mib',
    str('disk-mib'),
    quick ? QUICK.diskMiB : DEFAULTS.diskMiB,
  );
  const timeoutMs = positiveInt('timeout', str('timeout'), DEFAULTS.timeoutSec) * 1000;
  const workDir = resolve(str('dir') ?? tmpdir());
  mkdirSync(workDir, { recursive: true });
  const keepOutput = values['keep-output'] === true;
  const date = new Date();
  const host = machine();
  const engine = engineVersion();

  console.log(`checkpoint benchmark — ${date.toISOString()}`);
  console.log(`machine: ${describeMachine(host)}`);
  console.log(
    `engine: commit ${engine.commit}${engine.dirtySrc ? ' + uncommitted changes in src/' : ''}`,
  );
  const loadAtStart = loadavg();
  console.log(
    `load average at start: ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}` +
      (loadAtStart[0]! > 0.5 ? ' (the machine is busy: numbers will be noisy)' : ''),
  );
  console.log(
    `eddy run examples/keyed-sum.ts -p ${parallelism}, checkpoint interval ${intervalMs} ms; ` +
      `${rounds} round(s) x {no-checkpoints, checkpoints} per key count (interleaved); ` +
      `outputs, checkpoints and disk test in ${workDir}`,
  );

  const cases: CaseResult[] = [];
  let exitCode = 0;
  for (const [i, k] of keys.entries()) {
    const epk = eventsPerKey[i]!;
    const params: KeyedSumDataParams = {
      events: Math.round(k * epk),
      users: k,
      files,
      seed,
      layout: 'cover',
    };
    console.log(`\n=== ${fmtCount(k)} keys x ${epk} events per key ===`);
    const genStarted = performance.now();
    const data = ensureKeyedSumData(params);
    const generatedInMs = data.cached ? undefined : performance.now() - genStarted;
    const m = data.manifest;
    console.log(
      `data: ${fmtInt(m.events)} events, every one of ${fmtInt(m.users)} users ` +
        `${timesText(m.events, m.users)}, ${m.files} files, ` +
        `${(m.bytes / MiB).toFixed(1)} MiB — ${relative(REPO, data.dir)} ` +
        (generatedInMs === undefined ? '(cached)' : `(generated in ${fmtSec(generatedInMs)} s)`),
    );
    const disk = measureDiskWrite(workDir, diskMiB);
    console.log(
      `disk: ${fmtInt(disk.bytes / MiB)} MiB sequential write: ${fmtRate(disk.syncedMiBps)} MiB/s ` +
        `incl. fsync (${fmtSec(disk.syncedMs)} s), ${fmtRate(disk.bufferedMiBps)} MiB/s into the page cache`,
    );

    const runs: RunRecord[] = [];
    let failure: string | undefined;
    let reference: RunRecord | undefined;
    const configsInOrder: ConfigId[] = ['no-checkpoints', 'checkpoints'];
    outer: for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? configsInOrder : [...configsInOrder].reverse();
      for (const config of order) {
        let r: RunRecord;
        try {
          r = await runOnce({
            config,
            round,
            input: data.dir,
            events: m.events,
            parallelism,
            intervalMs,
            workDir,
            timeoutMs,
            keepOutput,
          });
        } catch (e) {
          if (!(e instanceof RunFailed) && !(e instanceof BenchFailure)) throw e;
          const reason = e instanceof RunFailed ? e.reason : e.message;
          failure = `${config} run (round ${round}) ${reason}`;
          console.log(`  round ${round}  ${config.padEnd(14)} ${reason.toUpperCase()}`);
          if (e instanceof RunFailed) console.log(e.detail.replace(/^/gm, '    '));
          break outer;
        }
        if (r.output.lines !== m.events) {
          failure = `${config} run (round ${round}) wrote ${r.output.lines} lines, expected ${m.events}`;
        } else if (reference !== undefined && !sameDigest(r.output, reference.output)) {
          failure =
            `${config} run (round ${round}) output differs from the ${reference.config} run's ` +
            `(digest ${r.output.hash} vs ${reference.output.hash})`;
        }
        reference ??= r;
        runs.push(r);
        const chk = r.checkpoints;
        const chkText =
          config === 'checkpoints'
            ? `  ${chk.length} checkpoints` +
              (chk.length > 0
                ? ` (sync med ${fmtMs(median(chk.map((c) => c.syncMs)))} ms, async med ` +
                  `${fmtMs(median(chk.map((c) => c.asyncMs)))} ms, last ${fmtMiB(chk.at(-1)!.bytes)} MiB)`
                : '') +
              (r.failedCheckpoints.length > 0 ? `, ${r.failedCheckpoints.length} failed` : '')
            : '';
        console.log(
          `  round ${round}  ${config.padEnd(14)} ${fmtInt(r.eventsPerSec).padStart(10)} ev/s  ` +
            `job ${fmtSec(r.durationMs).padStart(6)} s  wall ${fmtSec(r.wallMs).padStart(6)} s  ` +
            `peak RSS ${(r.maxRssBytes / MiB).toFixed(0).padStart(5)} MiB  ` +
            `load ${r.loadAverage.map((l) => l.toFixed(1)).join('→')}  ` +
            `output ${failure === undefined ? 'ok' : 'WRONG'}${chkText}`,
        );
        if (failure !== undefined) break outer;
      }
    }
    if (failure !== undefined) {
      exitCode = 1;
      console.log(`\n${fmtCount(k)} keys: NO COMPLETE RESULT — ${failure}`);
    }
    const summary = failure === undefined ? summarize(runs, disk) : undefined;
    const c: CaseResult = {
      keys: k,
      eventsPerKey: epk,
      data: {
        ...params,
        bytes: m.bytes,
        dir: relative(REPO, data.dir),
        ...(generatedInMs === undefined ? {} : { generatedInMs }),
      },
      disk,
      runs,
      ...(summary === undefined ? {} : { summary }),
      ...(failure === undefined ? {} : { failure }),
    };
    cases.push(c);
    if (summary !== undefined) printCase(c, summary, rounds);
  }

  printOverview(cases);
  const loadAtEnd = loadavg();
  console.log(`load average at end: ${loadAtEnd.map((l) => l.toFixed(2)).join(' ')}`);

  const resultsDir = join(DATA_ROOT, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const resultFile = join(
    resultsDir,
    `checkpoint-${date.toISOString().replace(/[:.]/g, '-')}.json`,
  );
  const result = {
    bench: 'checkpoint',
    date: date.toISOString(),
    machine: host,
    engine,
    loadAverage: { start: loadAtStart, end: loadAtEnd },
    options: {
      keys,
      eventsPerKey,
      intervalMs,
      rounds,
      parallelism,
      files,
      seed,
      diskMiB,
      timeoutMs,
      workDir,
      quick,
    },
    cases,
  };
  writeFileSync(resultFile, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nresults: ${relative(REPO, resultFile)}`);
  return exitCode;
};

export const main = benchMain('checkpoint', benchmark);
