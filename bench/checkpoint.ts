/**
 * checkpoint benchmark: keyed-sum (`eddy run examples/keyed-sum.ts`) with 1M and 10M keys in
 * state, run without checkpoints and with periodic checkpoints in each checkpoint mode, then
 * incremental checkpoints measured in this process with a controlled share of keys changed.
 *
 *   npm run bench -- checkpoint [--keys 1000000,10000000] [--events-per-key 3,1.2]
 *                               [--modes full,incremental] [--interval 1000] [--rounds 2]
 *                               [--increments 20] [--no-incremental] [--quick]
 *
 * Job runs: per key count it reports, per checkpoint mode (`--checkpoint-mode full|incremental`),
 * the throughput dip (events/s with checkpoints vs without, same data), the checkpoints' sync and
 * async durations and the bytes each wrote (parsed from the lines `eddy run` prints on stderr),
 * the mode's bytes against the full mode's, the size of the newest retained checkpoint (its
 * directory plus the shared files it refers to) and the keyed state it refers to, and the write
 * rate (bytes / async time) against the disk's sequential write rate, measured in the same run
 * with a plain write loop in the same file system. Every run is a fresh child process; the
 * configurations take turns (the first one rotates each round), and every run's output is
 * checked against the others' with an order-independent digest, so checkpointing must not change
 * the results.
 *
 * In-process incremental checkpoints (after the job runs, or alone with `--incremental-only`):
 * a heap keyed backend tracking changes over all 128 key groups (one backend, as at -p 1) with
 * keyed-sum's state for `--keys` keys (default 10M); a base written as the runtime writes one
 * (writeSharedBase), then `--increments` (20) rounds of: 1% of the keys updated at random
 * (seeded), 0.05% deleted, 0.1% added, a delta view written on the previous chains
 * (writeSharedDelta). Side by side on the same final state: a full checkpoint
 * (writeKeyedStateFile). It reports each delta's bytes against the full checkpoint's, write
 * times, the longest event-loop stall while writing, the bytes the final chains refer to (read
 * amplification), and the restore of the final incremental handle against the full checkpoint
 * (read, CRC, decode, apply chains, into a fresh backend; median of 3 alternating repetitions).
 * Both restores must give exactly the live state (entry count and digest), or the bench fails.
 *
 *   npm run bench -- checkpoint --write-only [--keys 10000000] [--rounds 3]
 *
 * measures the full checkpoint writer alone, in this process: a heap keyed backend holding
 * keyed-sum's state (`user-<k>` → an integer sum) for all key groups (as at -p 1: one thread
 * writes the whole checkpoint), snapshotted and written to a file again and again. Per round,
 * side by side: the view encoded in place (what a job does), the view read as snapshot arrays,
 * and the snapshot arrays encoded by msgpackr (the encoder before 2026-11-26). It reports MiB/s
 * (bytes / time from the snapshot to the fsynced file), the synchronous part, and the longest gap
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
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { AnyKeyedStateHandle, IncrementalKeyedStateHandle } from '../src/checkpoint/types.js';
import type { HeapKeyedStateBackend } from '../src/state/heap-keyed-backend.js';
import type { ValueState } from '../src/state/types.js';
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
  type DigestValue,
  digestDir,
  ensureKeyedSumData,
  type KeyedSumDataParams,
  mulberry32,
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

type Mode = 'full' | 'incremental';
const MODES: readonly Mode[] = ['full', 'incremental'];

const DEFAULTS = {
  keys: [1_000_000, 10_000_000],
  eventsPerKey: [3, 1.2],
  modes: MODES,
  intervalMs: 1000,
  rounds: 2,
  parallelism: 2,
  files: 8,
  seed: 42,
  diskMiB: 1024,
  timeoutSec: 600,
};

/** --quick: both parts at small sizes; a short interval so a run still has a few checkpoints. */
const QUICK = {
  keys: [200_000],
  eventsPerKey: [3],
  intervalMs: 250,
  rounds: 1,
  diskMiB: 256,
  incrementalKeys: 200_000,
};

const WRITE_ONLY = { keys: 10_000_000, rounds: 3, maxParallelism: 128 };

/** The in-process incremental part: the issue's 1% of keys changed per checkpoint. */
const INCREMENTAL = {
  keys: 10_000_000,
  increments: 20,
  /** Per round, of the initial key count: updated (value changes), deleted, added. */
  updateFraction: 0.01,
  deleteFraction: 0.0005,
  addFraction: 0.001,
  restoreRepetitions: 3,
  maxParallelism: 128,
  /** Targets of issue 15, item 3. */
  maxBytesPercentOfFull: 3,
  maxRestoreRatio: 1.5,
};

const HELP = `usage: npm run bench -- checkpoint [options]

  --keys <list>            key counts (distinct users in state), comma-separated
                           (default ${DEFAULTS.keys.join(',')}); the in-process incremental part
                           uses the largest (default ${INCREMENTAL.keys.toLocaleString('en-US')})
  --events-per-key <list>  events per key, one value for all key counts or one per key count
                           (default ${DEFAULTS.eventsPerKey.join(',')} with the default keys: 3M and 12M
                           events; ${DEFAULTS.eventsPerKey[0]} with --keys); >= 1, every key appears
  --modes <list>           checkpoint modes of the checkpointed runs, comma-separated
                           (default ${DEFAULTS.modes.join(',')}); each runs beside a run without checkpoints
  --interval <ms>          checkpoint interval of the checkpointed runs (default ${DEFAULTS.intervalMs})
  --rounds <n>             rounds; each runs keyed-sum without checkpoints and in every mode
                           (default ${DEFAULTS.rounds})
  --parallelism <n>        eddy -p (default ${DEFAULTS.parallelism})
  --files <n>              input files (default ${DEFAULTS.files})
  --seed <n>               data generator and in-process update seed (default ${DEFAULTS.seed})
  --disk-mib <n>           MiB written by the sequential disk write test (default ${DEFAULTS.diskMiB})
  --timeout <s>            give up on a run (and the rest of its key count) after this long
                           (default ${DEFAULTS.timeoutSec})
  --dir <path>             where outputs, checkpoints and the disk test file go (default: OS temp dir)
  --increments <n>         in-process incremental checkpoints after the base (default ${INCREMENTAL.increments})
  --no-incremental         skip the in-process incremental part
  --incremental-only       only the in-process incremental part (see the module doc)
  --quick                  smoke run: ${QUICK.keys[0]} keys x ${QUICK.eventsPerKey[0]} events, interval ${QUICK.intervalMs} ms,
                           ${QUICK.rounds} round, ${QUICK.diskMiB} MiB disk test; in-process part at ${QUICK.incrementalKeys.toLocaleString('en-US')} keys
                           (explicit options still win)
  --keep-output            keep the runs' directories (output, checkpoints, stderr)
  --write-only             only the full checkpoint writer, in this process (see the module doc);
                           default ${WRITE_ONLY.keys.toLocaleString('en-US')} keys, ${WRITE_ONLY.rounds} rounds
  -h, --help               this help`;

type ConfigId = 'no-checkpoints' | Mode;

const configLabel = (c: ConfigId): string => (c === 'no-checkpoints' ? c : `chk ${c}`);

/** A checkpoint left in the checkpoint directory at the end of a run (retention keeps a few). */
interface RetainedCheckpoint {
  /** Files of its `chk-<id>` directory: metadata, operator state, a full checkpoint's keyed files. */
  readonly dirBytes: number;
  /** The shared files its metadata refers to (whole files, as on disk). */
  readonly sharedFiles: number;
  readonly sharedBytes: number;
  /** dirBytes + sharedBytes: what keeping this checkpoint keeps on disk. */
  readonly onDiskBytes: number;
  /** Bytes of the keyed blocks its handles refer to: what restoring its keyed state reads. */
  readonly keyedStateBytes: number;
  /** Why its metadata or a shared file could not be read, if so. */
  readonly error?: string;
}

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
  /** The checkpoints retained at the end, by id. */
  readonly retained: Record<number, RetainedCheckpoint>;
  /** Everything in the checkpoint directory at the end (shared files not yet collected too). */
  readonly checkpointDirBytes: number;
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

interface Stat {
  readonly median: number;
  readonly max: number;
}

const stat = (xs: readonly number[]): Stat => ({
  median: median(xs),
  max: xs.length === 0 ? Number.NaN : Math.max(...xs),
});

/** One checkpoint mode's runs against the runs without checkpoints. */
interface ModeSummary {
  readonly mode: Mode;
  readonly eventsPerSec: number;
  /** 1 - with / without, in percent (> 0: checkpointing costs throughput). */
  readonly dipPercent: number;
  readonly durationMs: number;
  readonly maxRssBytes: number;
  /** Median over the mode's runs. */
  readonly checkpointsPerRun: number;
  readonly failedCheckpoints: number;
  readonly syncMs: Stat;
  readonly asyncMs: Stat;
  readonly totalMs: Stat;
  /** Bytes written per checkpoint, as its line says (a delta's new blocks, for incremental). */
  readonly bytes: Stat;
  /** This mode's bytes median / max over the full mode's (undefined without a full mode). */
  readonly bytesVsFull?: Stat;
  /** Sum of bytes / sum of async time over all checkpoints, MiB/s. */
  readonly writeMiBps: number;
  /** Median over checkpoints of bytes / async time, MiB/s. */
  readonly medianCheckpointWriteMiBps: number;
  /** writeMiBps / the disk's synced sequential write rate. */
  readonly writeVsDisk: number;
  /** Sum of the checkpoints' sync parts / job duration (median over the mode's runs). */
  readonly syncShareOfJob: number;
  /** The newest retained checkpoint of each run, medians over the runs. */
  readonly newestRetained: {
    readonly onDiskBytes: number;
    readonly keyedStateBytes: number;
    readonly sharedFiles: number;
  };
  /** Everything in the checkpoint directory at the end, median over the runs. */
  readonly checkpointDirBytes: number;
}

interface CaseSummary {
  readonly withoutEventsPerSec: number;
  readonly withoutDurationMs: number;
  readonly withoutMaxRssBytes: number;
  /**
   * Events per checkpoint interval (without checkpoints) as a percentage of the keys: about the
   * share of keys a delta holds once every key exists (the data walk over all keys in passes).
   */
  readonly eventsPerIntervalPercentOfKeys: number;
  readonly modes: ModeSummary[];
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

/** Bytes of every file under `path` (0 if it does not exist). */
const treeBytes = (path: string): number => {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const name of readdirSync(path)) n += treeBytes(join(path, name));
  return n;
};

/**
 * The `chk-<id>` directories left in a checkpoint dir, each with the shared files its metadata
 * refers to: an incremental checkpoint's directory holds little more than its metadata, its
 * keyed state is in `blocks/`, mostly in files earlier checkpoints wrote.
 */
const retainedCheckpoints = async (dir: string): Promise<Record<number, RetainedCheckpoint>> => {
  const { loadMetadata, sharedFilesOf, stateBytesOf, SHARED_DIR } = await import(
    '../src/checkpoint/index.js'
  );
  const out: Record<number, RetainedCheckpoint> = {};
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const m = /^chk-(\d+)$/.exec(name);
    if (m === null) continue;
    const chk = join(dir, name);
    const dirBytes = treeBytes(chk);
    let sharedFiles = 0;
    let sharedBytes = 0;
    let keyedStateBytes = 0;
    let error: string | undefined;
    try {
      const metadata = await loadMetadata(chk);
      for (const op of metadata.operators) {
        for (const s of op.subtasks) if (s.keyed) keyedStateBytes += stateBytesOf(s.keyed);
      }
      for (const f of sharedFilesOf(metadata)) {
        sharedFiles++;
        sharedBytes += statSync(join(dir, SHARED_DIR, f)).size;
      }
    } catch (e) {
      error = (e as Error).message;
    }
    out[Number(m[1])] = {
      dirBytes,
      sharedFiles,
      sharedBytes,
      onDiskBytes: dirBytes + sharedBytes,
      keyedStateBytes,
      ...(error === undefined ? {} : { error }),
    };
  }
  return out;
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
      ...(spec.config === 'no-checkpoints'
        ? []
        : [
            '--checkpoint-interval',
            String(spec.intervalMs),
            '--checkpoint-dir',
            checkpoints,
            '--checkpoint-mode',
            spec.config,
          ]),
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
    const retained = await retainedCheckpoints(checkpoints);
    const unreadable = Object.entries(retained).find(([, r]) => r.error !== undefined);
    if (unreadable !== undefined) {
      keep = true;
      throw new RunFailed(
        'unreadable retained checkpoint',
        `chk-${unreadable[0]}: ${unreadable[1].error}; kept in ${root}`,
      );
    }
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
      retained,
      checkpointDirBytes: treeBytes(checkpoints),
      stats,
    };
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
    else if (spec.keepOutput) console.log(`    kept in ${root}`);
  }
};

// ---------------------------------------------------------------------------------------------

/** The newest retained checkpoint of a run, if any. */
const newestRetained = (r: RunRecord): RetainedCheckpoint | undefined => {
  const ids = Object.keys(r.retained).map(Number);
  return ids.length === 0 ? undefined : r.retained[Math.max(...ids)];
};

const summarizeMode = (
  mode: Mode,
  runs: readonly RunRecord[],
  withoutEps: number,
  disk: DiskRate,
): ModeSummary => {
  const chks = runs.flatMap((r) => r.checkpoints);
  const totalBytes = chks.reduce((s, c) => s + c.bytes, 0);
  const totalAsyncMs = chks.reduce((s, c) => s + c.asyncMs, 0);
  const writeMiBps = totalBytes / MiB / (totalAsyncMs / 1000);
  const eps = median(runs.map((r) => r.eventsPerSec));
  const newest = runs.flatMap((r) => {
    const n = newestRetained(r);
    return n === undefined ? [] : [n];
  });
  return {
    mode,
    eventsPerSec: eps,
    dipPercent: (1 - eps / withoutEps) * 100,
    durationMs: median(runs.map((r) => r.durationMs)),
    maxRssBytes: median(runs.map((r) => r.maxRssBytes)),
    checkpointsPerRun: median(runs.map((r) => r.checkpoints.length)),
    failedCheckpoints: runs.reduce((s, r) => s + r.failedCheckpoints.length, 0),
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
      runs.map((r) => r.checkpoints.reduce((s, c) => s + c.syncMs, 0) / r.durationMs),
    ),
    newestRetained: {
      onDiskBytes: median(newest.map((n) => n.onDiskBytes)),
      keyedStateBytes: median(newest.map((n) => n.keyedStateBytes)),
      sharedFiles: median(newest.map((n) => n.sharedFiles)),
    },
    checkpointDirBytes: median(runs.map((r) => r.checkpointDirBytes)),
  };
};

const summarize = (
  runs: RunRecord[],
  modes: readonly Mode[],
  disk: DiskRate,
  keys: number,
  intervalMs: number,
): CaseSummary | undefined => {
  const without = runs.filter((r) => r.config === 'no-checkpoints');
  if (without.length === 0 || modes.some((m) => !runs.some((r) => r.config === m))) {
    return undefined;
  }
  const withoutEps = median(without.map((r) => r.eventsPerSec));
  const perMode = modes.map((m) =>
    summarizeMode(
      m,
      runs.filter((r) => r.config === m),
      withoutEps,
      disk,
    ),
  );
  const full = perMode.find((s) => s.mode === 'full');
  return {
    withoutEventsPerSec: withoutEps,
    withoutDurationMs: median(without.map((r) => r.durationMs)),
    withoutMaxRssBytes: median(without.map((r) => r.maxRssBytes)),
    eventsPerIntervalPercentOfKeys: ((withoutEps * (intervalMs / 1000)) / keys) * 100,
    modes: perMode.map((s) =>
      full === undefined
        ? s
        : {
            ...s,
            bytesVsFull: {
              median: s.bytes.median / full.bytes.median,
              max: s.bytes.max / full.bytes.max,
            },
          },
    ),
  };
};

const fmtMs = (ms: number) =>
  Number.isNaN(ms) ? '-' : ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
const fmtMiB = (bytes: number) =>
  Number.isNaN(bytes)
    ? '-'
    : bytes > 0 && bytes < 0.1 * MiB
      ? (bytes / MiB).toFixed(3)
      : (bytes / MiB).toFixed(1);
const fmtRate = (r: number) => (Number.isFinite(r) ? r.toFixed(0) : '-');
const fmtPct = (x: number, digits = 1) => (Number.isFinite(x) ? `${x.toFixed(digits)} %` : '-');
const fmtCount = (n: number) =>
  n >= 1e6 && n % 1e5 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 100 === 0 ? `${n / 1e3}k` : fmtInt(n);
const medMax = (s: Stat, f: (x: number) => string) => `${f(s.median)} / ${f(s.max)}`;

const printCase = (c: CaseResult, s: CaseSummary, rounds: number): void => {
  const d = c.disk;
  console.log(
    `\n${fmtCount(c.keys)} keys, ${fmtCount(c.data.events)} events — medians of ${rounds} run(s) per configuration; ` +
      `events per checkpoint interval ≈ ${s.eventsPerIntervalPercentOfKeys.toFixed(1)} % of the keys\n`,
  );
  const row = (label: string, none: string, f: (m: ModeSummary) => string) => [
    label,
    none,
    ...s.modes.map(f),
  ];
  console.log(
    table(
      ['', 'no checkpoints', ...s.modes.map((m) => m.mode)],
      [
        row('events/s', fmtInt(s.withoutEventsPerSec), (m) => fmtInt(m.eventsPerSec)),
        row('throughput dip', '', (m) => fmtPct(m.dipPercent)),
        row('job s', fmtSec(s.withoutDurationMs), (m) => fmtSec(m.durationMs)),
        row('peak RSS MiB', (s.withoutMaxRssBytes / MiB).toFixed(0), (m) =>
          (m.maxRssBytes / MiB).toFixed(0),
        ),
        row(
          'checkpoints completed per run',
          '',
          (m) =>
            `${m.checkpointsPerRun}${m.failedCheckpoints > 0 ? ` (+${m.failedCheckpoints} failed)` : ''}`,
        ),
        row('sync ms median / max', '', (m) => medMax(m.syncMs, fmtMs)),
        row('async ms median / max', '', (m) => medMax(m.asyncMs, fmtMs)),
        row('total ms median / max', '', (m) => medMax(m.totalMs, fmtMs)),
        row('sync share of job time', '', (m) => fmtPct(m.syncShareOfJob * 100)),
        row('MiB written per chk median / max', '', (m) => medMax(m.bytes, fmtMiB)),
        row('bytes vs full median / max', '', (m) =>
          m.bytesVsFull === undefined ? '-' : medMax(m.bytesVsFull, (x) => fmtPct(x * 100)),
        ),
        row(
          'newest retained chk MiB on disk',
          '',
          (m) =>
            `${fmtMiB(m.newestRetained.onDiskBytes)}` +
            (m.newestRetained.sharedFiles > 0
              ? ` (${m.newestRetained.sharedFiles} shared files)`
              : ''),
        ),
        row('  keyed state it refers to MiB', '', (m) => fmtMiB(m.newestRetained.keyedStateBytes)),
        row('checkpoint dir at the end MiB', '', (m) => fmtMiB(m.checkpointDirBytes)),
        row(
          'chk write MiB/s (all / median)',
          '',
          (m) => `${fmtRate(m.writeMiBps)} / ${fmtRate(m.medianCheckpointWriteMiBps)}`,
        ),
        row('chk write vs disk (fsync)', '', (m) => fmtPct(m.writeVsDisk * 100)),
      ],
    ),
  );
  console.log(
    `disk seq. write: ${fmtRate(d.syncedMiBps)} MiB/s incl. fsync, ${fmtRate(d.bufferedMiBps)} MiB/s into the page cache`,
  );
};

const printOverview = (cases: CaseResult[]): void => {
  const rows = cases.flatMap((c) => {
    const s = c.summary;
    if (s === undefined) {
      return [
        [
          fmtCount(c.keys),
          fmtCount(c.data.events),
          '-',
          ...Array.from({ length: 12 }, () => '-'),
          c.failure ?? 'no result',
        ],
      ];
    }
    return s.modes.map((m) => [
      fmtCount(c.keys),
      fmtCount(c.data.events),
      m.mode,
      fmtInt(s.withoutEventsPerSec),
      fmtInt(m.eventsPerSec),
      m.dipPercent.toFixed(1),
      String(m.checkpointsPerRun),
      fmtMs(m.syncMs.median),
      fmtMs(m.syncMs.max),
      fmtMs(m.asyncMs.median),
      fmtMs(m.asyncMs.max),
      fmtMiB(m.bytes.median),
      fmtMiB(m.bytes.max),
      m.bytesVsFull === undefined ? '-' : fmtPct(m.bytesVsFull.median * 100),
      fmtMiB(m.newestRetained.onDiskBytes),
      fmtMiB(m.newestRetained.keyedStateBytes),
    ]);
  });
  console.log('\nsummary\n');
  console.log(
    table(
      [
        'keys',
        'events',
        'mode',
        'ev/s no chk',
        'ev/s chk',
        'dip %',
        'chks',
        'sync med',
        'sync max',
        'async med',
        'async max',
        'MiB med',
        'MiB max',
        'vs full',
        'kept MiB',
        'state MiB',
      ],
      rows,
    ),
  );
  console.log(
    '\nevents/s = events / job time (stats file). dip = 1 - with / without. sync/async/total ms\n' +
      'and MiB (bytes written) are what eddy prints per completed checkpoint (sync and async: the\n' +
      'longest subtask/worker; sizes rounded by the printer); an incremental checkpoint writes only\n' +
      "its new blocks. vs full = median MiB over the full mode's median. kept MiB = the newest\n" +
      'retained checkpoint on disk: its directory plus the shared files it refers to (whole files);\n' +
      'state MiB = the keyed blocks it refers to (what a restore reads). The checkpointed runs also\n' +
      'pay for the exactly-once file sink committing on every checkpoint, so the dip is the cost of\n' +
      'checkpointing as a whole.',
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

const modeList = (value: string): Mode[] => {
  const out: Mode[] = [];
  for (const part of value.split(',')) {
    const m = part.trim();
    if (!MODES.includes(m as Mode)) {
      throw new BenchFailure(
        `--modes takes a comma-separated list of ${MODES.join(', ')}; got '${value}'`,
      );
    }
    if (!out.includes(m as Mode)) out.push(m as Mode);
  }
  return out;
};

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

// --------------------------------------------------------------------------------------------
// In-process incremental checkpoints: a controlled share of keys changed per checkpoint

/** The engine parts the in-process part uses (imported on demand, like --write-only's). */
const loadEngine = async () => {
  const { HeapKeyedStateBackend } = await import('../src/state/heap-keyed-backend.js');
  const { ValueStateDescriptor } = await import('../src/state/descriptors.js');
  const { assignToKeyGroup } = await import('../src/keygroups/index.js');
  const checkpoint = await import('../src/checkpoint/index.js');
  return { HeapKeyedStateBackend, ValueStateDescriptor, assignToKeyGroup, ...checkpoint };
};
type Engine = Awaited<ReturnType<typeof loadEngine>>;

/**
 * A full garbage collection before a timed restore, so that one restore does not pay for the
 * garbage of the one before (a no-op if this Node refuses to expose `gc`).
 */
let gcFn: (() => void) | null | undefined;
const fullGc = (): void => {
  if (gcFn === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as unknown;
      gcFn = typeof gc === 'function' ? (gc as () => void) : null;
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
};

/** keyed-sum's state in a change-tracking backend, and the ids of its live keys. */
interface SumState {
  readonly backend: HeapKeyedStateBackend;
  readonly sum: ValueState<number>;
  /** Ids k of the live keys `user-<k>`, the first `live` slots; deletion swaps in the last. */
  readonly ids: Int32Array;
  live: number;
  nextId: number;
}

const setKey = (engine: Engine, s: SumState, id: number): void => {
  const key = `user-${id}`;
  s.backend.setCurrentKey(key, engine.assignToKeyGroup(key, s.backend.maxParallelism));
};

const fillSumState = (engine: Engine, keys: number, capacity: number): SumState => {
  const maxParallelism = INCREMENTAL.maxParallelism;
  const backend = new engine.HeapKeyedStateBackend({
    keyGroupRange: { start: 0, end: maxParallelism - 1 },
    maxParallelism,
    trackChanges: true,
  });
  const sum = backend.getState(new engine.ValueStateDescriptor<number>('sum', { defaultValue: 0 }));
  const s: SumState = { backend, sum, ids: new Int32Array(capacity), live: 0, nextId: keys };
  for (let k = 0; k < keys; k++) {
    setKey(engine, s, k);
    sum.update(1 + ((k * 7919) % 3000)); // 1..3000: keyed-sum's totals of 1-3 amounts
    s.ids[s.live++] = k;
  }
  return s;
};

interface RoundChanges {
  readonly updated: number;
  readonly deleted: number;
  readonly added: number;
}

/** One round of changes: updates (random live keys, with replacement), deletions, new keys. */
const changeSumState = (engine: Engine, s: SumState, rand: () => number, n: RoundChanges): void => {
  const pick = () => Math.floor(rand() * s.live);
  for (let i = 0; i < n.updated; i++) {
    setKey(engine, s, s.ids[pick()]!);
    s.sum.update((s.sum.value() ?? 0) + 1 + Math.floor(rand() * 3));
  }
  for (let i = 0; i < n.deleted; i++) {
    const at = pick();
    setKey(engine, s, s.ids[at]!);
    s.sum.clear();
    s.ids[at] = s.ids[--s.live]!;
  }
  for (let i = 0; i < n.added; i++) {
    const id = s.nextId++;
    s.ids[s.live++] = id;
    setKey(engine, s, id);
    s.sum.update(1 + Math.floor(rand() * 3000));
  }
};

interface StateDigest {
  readonly entries: number;
  readonly hash: string;
}

/** Order-independent digest of state `sum`: entry count and two 32-bit sums of entry hashes. */
const digestSumState = (backend: HeapKeyedStateBackend): StateDigest => {
  let entries = 0;
  let a = 0;
  let b = 0;
  backend.forEachEntry('sum', (value, key) => {
    const text = `${String(key)}=${String(value)}`;
    let h1 = 0x811c9dc5;
    let h2 = 0x5bd1e995;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995) ^ (h2 >>> 13);
    }
    a = (a + (h1 >>> 0)) >>> 0;
    b = (b + (h2 >>> 0)) >>> 0;
    entries++;
  });
  const hex = (x: number) => x.toString(16).padStart(8, '0');
  return { entries, hash: hex(a) + hex(b) };
};

interface WriteStat {
  readonly bytes: number;
  /** From the snapshot (or delta view) to the fsynced file. */
  readonly ms: number;
  /** Taking the snapshot or delta view. */
  readonly syncMs: number;
  /** Longest gap between two turns of the event loop from the snapshot to the written file. */
  readonly maxStallMs: number;
  readonly stallsOver20: number;
}

interface DeltaRound extends WriteStat, RoundChanges {
  readonly round: number;
  readonly liveKeys: number;
  readonly keyGroupsChanged: number;
  /** Key groups whose chain was rewritten as a new base (compaction rule). */
  readonly rebased: number;
  readonly longestChain: number;
  readonly filesReferred: number;
  /** Bytes of every block the chains refer to: what a restore reads. */
  readonly referencedBytes: number;
}

interface RestoreRun {
  readonly kind: 'incremental' | 'full';
  readonly repetition: number;
  /** Reading the blocks and checking their CRCs (readKeyGroupsLazily). */
  readonly readMs: number;
  /** Decoding each key group (applying its chain) and putting it into the backend. */
  readonly decodeMs: number;
  readonly ms: number;
  readonly bytesRead: number;
  readonly digest: StateDigest;
}

interface RestoreSummary {
  /** Medians over the repetitions; minMs the fastest (less sensitive to a busy machine). */
  readonly ms: number;
  readonly minMs: number;
  readonly readMs: number;
  readonly decodeMs: number;
  readonly bytesRead: number;
}

interface IncrementalResult {
  readonly keys: number;
  readonly increments: number;
  readonly changesPerRound: RoundChanges;
  readonly seed: number;
  readonly fillMs: number;
  /** Heap used after filling the state (after a full GC, if available). */
  readonly heapUsedAfterFill: number;
  readonly base: WriteStat;
  readonly rounds: DeltaRound[];
  readonly full: WriteStat;
  readonly restores: RestoreRun[];
  readonly gcBetweenRestores: boolean;
  /** The live state at the end, which both restores reproduced. */
  readonly state: StateDigest;
  readonly summary: {
    readonly bytesPercentOfFull: Stat;
    readonly writeMs: Stat;
    readonly syncMs: Stat;
    readonly maxStallMs: Stat;
    readonly fullMaxStallMs: number;
    readonly referencedBytes: number;
    /** Referenced bytes of the final chains / the full checkpoint's bytes. */
    readonly readAmplification: number;
    readonly restore: {
      readonly incremental: RestoreSummary;
      readonly full: RestoreSummary;
      /** Median incremental restore / median full restore. */
      readonly ratio: number;
    };
    readonly bytesTargetMet: boolean;
    readonly restoreTargetMet: boolean;
  };
}

const timedWrite = async <H extends { readonly bytes: number }>(
  take: () => { write: () => Promise<H>; release: () => void },
): Promise<{ handle: H; stat: WriteStat }> => {
  const stop = stallMonitor();
  const t0 = performance.now();
  const snapshot = take();
  const syncMs = performance.now() - t0;
  let handle: H;
  try {
    handle = await snapshot.write();
  } finally {
    snapshot.release();
  }
  const ms = performance.now() - t0;
  const stall = stop();
  return {
    handle,
    stat: { bytes: handle.bytes, ms, syncMs, maxStallMs: stall.max, stallsOver20: stall.over20 },
  };
};

const restoreOnce = async (
  engine: Engine,
  dir: string,
  handle: AnyKeyedStateHandle,
): Promise<Omit<RestoreRun, 'kind' | 'repetition'>> => {
  fullGc();
  const maxParallelism = INCREMENTAL.maxParallelism;
  const range = { start: 0, end: maxParallelism - 1 };
  const backend = new engine.HeapKeyedStateBackend({ keyGroupRange: range, maxParallelism });
  try {
    const t0 = performance.now();
    const { groups, bytesRead } = await engine.readKeyGroupsLazily(dir, handle, range);
    const t1 = performance.now();
    // As a job restores: lazily, then every key group decoded (a chain's blocks applied one
    // after the other into the backend).
    for (const g of groups) backend.restoreKeyGroupLazily(g);
    backend.numEntries();
    const t2 = performance.now();
    return {
      readMs: t1 - t0,
      decodeMs: t2 - t1,
      ms: t2 - t0,
      bytesRead,
      digest: digestSumState(backend),
    };
  } finally {
    backend.dispose();
  }
};

interface IncrementalOptions {
  readonly keys: number;
  readonly increments: number;
  readonly seed: number;
  readonly workDir: string;
  readonly restoreRepetitions: number;
  readonly log: boolean;
}

/**
 * The in-process incremental cycle (see the module doc). Throws BenchFailure if a restore does
 * not reproduce the live state.
 */
const incrementalCycle = async (
  engine: Engine,
  opts: IncrementalOptions,
): Promise<IncrementalResult> => {
  const log = opts.log ? (line: string) => console.log(line) : () => {};
  const maxParallelism = INCREMENTAL.maxParallelism;
  const range = { start: 0, end: maxParallelism - 1 };
  const changes: RoundChanges = {
    updated: Math.max(1, Math.round(opts.keys * INCREMENTAL.updateFraction)),
    deleted: Math.max(1, Math.round(opts.keys * INCREMENTAL.deleteFraction)),
    added: Math.max(1, Math.round(opts.keys * INCREMENTAL.addFraction)),
  };
  const fillStarted = performance.now();
  const s = fillSumState(engine, opts.keys, opts.keys + changes.added * opts.increments);
  const fillMs = performance.now() - fillStarted;
  fullGc();
  const heapUsedAfterFill = process.memoryUsage().heapUsed;
  log(
    `state: ${fmtInt(opts.keys)} keys in ${maxParallelism} key groups, one backend tracking changes ` +
      `(as -p 1), filled in ${fmtSec(fillMs)} s; heap ${fmtMiB(heapUsedAfterFill)} MiB`,
  );
  const dir = mkdtempSync(join(opts.workDir, 'eddy-bench-checkpoint-incremental-'));
  const chkDir = (id: number) => {
    const d = join(dir, engine.checkpointDirName(id));
    mkdirSync(d, { recursive: true });
    return d;
  };
  const rand = mulberry32(opts.seed);
  try {
    const baseDir = chkDir(1);
    // As the runtime's KeyedCheckpointer does for a base: forget the changes, then a view.
    s.backend.forgetChanges();
    const base = await timedWrite(() => {
      const view = s.backend.snapshotView();
      return {
        write: () =>
          engine.writeSharedBase(baseDir, engine.sharedKeyedFileName('bench', 0, 1), range, view),
        release: () => view.release(),
      };
    });
    log(
      `base: ${fmtMiB(base.stat.bytes)} MiB in ${fmtMs(base.stat.ms)} ms, longest stall ` +
        `${fmtMs(base.stat.maxStallMs)} ms`,
    );
    let previous: IncrementalKeyedStateHandle = base.handle;
    const rounds: DeltaRound[] = [];
    log(
      `${opts.increments} rounds of ${fmtInt(changes.updated)} updates, ${fmtInt(changes.deleted)} ` +
        `deletions, ${fmtInt(changes.added)} new keys (seed ${opts.seed})`,
    );
    for (let round = 1; round <= opts.increments; round++) {
      changeSumState(engine, s, rand, changes);
      const id = round + 1;
      const dirOf = chkDir(id);
      const fileName = engine.sharedKeyedFileName('bench', 0, id);
      const prev = previous;
      let keyGroupsChanged = 0;
      const delta = await timedWrite(() => {
        const view = s.backend.deltaView();
        if (view === undefined) throw new BenchFailure('no delta view: one is still open');
        keyGroupsChanged = view.keyGroups.length;
        return {
          write: async () => {
            const h = await engine.writeSharedDelta(dirOf, fileName, range, prev, view);
            view.complete();
            return h;
          },
          release: () => view.release(),
        };
      });
      const h = delta.handle;
      // Rewritten as a new base: a chain of one block, in this round's file, that had a chain.
      const hadChain = new Set(prev.chains.map((c) => c.keyGroup));
      const newFile = h.files.findIndex((f) => f.endsWith(`/${fileName}`));
      const rebased = h.chains.filter(
        (c) => c.blocks.length === 1 && c.blocks[0]!.file === newFile && hadChain.has(c.keyGroup),
      ).length;
      const r: DeltaRound = {
        round,
        ...changes,
        ...delta.stat,
        liveKeys: s.live,
        keyGroupsChanged,
        rebased,
        longestChain: Math.max(0, ...h.chains.map((c) => c.blocks.length)),
        filesReferred: h.files.length,
        referencedBytes: engine.stateBytesOf(h),
      };
      rounds.push(r);
      previous = h;
      log(
        `  delta ${String(round).padStart(2)}  ${fmtMiB(r.bytes).padStart(7)} MiB in ` +
          `${fmtMs(r.ms).padStart(6)} ms (sync ${fmtMs(r.syncMs)} ms)  longest stall ` +
          `${fmtMs(r.maxStallMs)} ms  ${r.keyGroupsChanged} key groups changed` +
          `${r.rebased > 0 ? ` (${r.rebased} rebased)` : ''}, longest chain ` +
          `${r.longestChain}, refers to ${fmtMiB(r.referencedBytes)} MiB in ${r.filesReferred} files`,
      );
    }
    const finalDir = join(dir, engine.checkpointDirName(opts.increments + 1));
    const finalHandle = previous;
    // Side by side on the same state: a full checkpoint, as full mode writes one.
    const fullDir = join(dir, 'full');
    mkdirSync(fullDir);
    const full = await timedWrite(() => {
      const view = s.backend.snapshotView();
      return {
        write: () => engine.writeKeyedStateFile(fullDir, 'full.keyed', range, view),
        release: () => view.release(),
      };
    });
    log(
      `full: ${fmtMiB(full.stat.bytes)} MiB in ${fmtMs(full.stat.ms)} ms (sync ` +
        `${fmtMs(full.stat.syncMs)} ms), longest stall ${fmtMs(full.stat.maxStallMs)} ms`,
    );
    const state = digestSumState(s.backend);
    if (state.entries !== s.live) {
      throw new BenchFailure(
        `the backend holds ${state.entries} entries, the bench put ${s.live} live keys into it`,
      );
    }
    s.backend.dispose(); // the restores below need the memory

    const restores: RestoreRun[] = [];
    for (let rep = 1; rep <= opts.restoreRepetitions; rep++) {
      const kinds: Array<'incremental' | 'full'> =
        rep % 2 === 1 ? ['incremental', 'full'] : ['full', 'incremental'];
      for (const kind of kinds) {
        const r =
          kind === 'incremental'
            ? await restoreOnce(engine, finalDir, finalHandle)
            : await restoreOnce(engine, fullDir, full.handle);
        if (r.digest.entries !== state.entries || r.digest.hash !== state.hash) {
          throw new BenchFailure(
            `the ${kind} restore (repetition ${rep}) gave ${r.digest.entries} entries, digest ` +
              `${r.digest.hash}; the live state had ${state.entries}, digest ${state.hash}`,
          );
        }
        restores.push({ kind, repetition: rep, ...r });
        log(
          `  restore ${kind.padEnd(11)} rep ${rep}: ${fmtMs(r.ms).padStart(6)} ms (read+CRC ` +
            `${fmtMs(r.readMs)} ms, decode+restore ${fmtMs(r.decodeMs)} ms), ` +
            `${fmtMiB(r.bytesRead)} MiB read, state verified`,
        );
      }
    }
    const restoreOf = (kind: 'incremental' | 'full'): RestoreSummary => {
      const rs = restores.filter((r) => r.kind === kind);
      return {
        ms: median(rs.map((r) => r.ms)),
        minMs: Math.min(...rs.map((r) => r.ms)),
        readMs: median(rs.map((r) => r.readMs)),
        decodeMs: median(rs.map((r) => r.decodeMs)),
        bytesRead: rs[0]!.bytesRead,
      };
    };
    const inc = restoreOf('incremental');
    const fullRestore = restoreOf('full');
    const bytesPercentOfFull = stat(rounds.map((r) => (r.bytes / full.stat.bytes) * 100));
    const referencedBytes = engine.stateBytesOf(finalHandle);
    const ratio = inc.ms / fullRestore.ms;
    return {
      keys: opts.keys,
      increments: opts.increments,
      changesPerRound: changes,
      seed: opts.seed,
      fillMs,
      heapUsedAfterFill,
      base: base.stat,
      rounds,
      full: full.stat,
      restores,
      gcBetweenRestores: gcFn != null,
      state,
      summary: {
        bytesPercentOfFull,
        writeMs: stat(rounds.map((r) => r.ms)),
        syncMs: stat(rounds.map((r) => r.syncMs)),
        maxStallMs: stat(rounds.map((r) => r.maxStallMs)),
        fullMaxStallMs: full.stat.maxStallMs,
        referencedBytes,
        readAmplification: referencedBytes / full.stat.bytes,
        restore: { incremental: inc, full: fullRestore, ratio },
        bytesTargetMet: bytesPercentOfFull.max <= INCREMENTAL.maxBytesPercentOfFull,
        restoreTargetMet: ratio <= INCREMENTAL.maxRestoreRatio,
      },
    };
  } finally {
    s.backend.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
};

const printIncremental = (r: IncrementalResult): void => {
  const s = r.summary;
  const c = r.changesPerRound;
  console.log(
    `\nincremental checkpoints in process — ${fmtCount(r.keys)} keys, ${r.increments} deltas of ` +
      `${fmtInt(c.updated)} updates + ${fmtInt(c.deleted)} deletions + ${fmtInt(c.added)} new keys each\n`,
  );
  const met = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const rs = s.restore;
  const restoreText = (x: RestoreSummary) =>
    `${fmtMs(x.ms)} (read+CRC ${fmtMs(x.readMs)}, decode+restore ${fmtMs(x.decodeMs)}; ` +
    `min ${fmtMs(x.minMs)}; ${fmtMiB(x.bytesRead)} MiB)`;
  console.log(
    table(
      ['', 'value'],
      [
        [
          'full checkpoint MiB / write ms / longest stall ms',
          `${fmtMiB(r.full.bytes)} / ${fmtMs(r.full.ms)} / ${fmtMs(r.full.maxStallMs)}`,
        ],
        [
          'base (first incremental) MiB / write ms',
          `${fmtMiB(r.base.bytes)} / ${fmtMs(r.base.ms)}`,
        ],
        [
          'delta MiB median / max',
          `${fmtMiB(median(r.rounds.map((x) => x.bytes)))} / ${fmtMiB(Math.max(...r.rounds.map((x) => x.bytes)))}`,
        ],
        [
          `delta bytes % of full median / max (target <= ${INCREMENTAL.maxBytesPercentOfFull} %)`,
          `${medMax(s.bytesPercentOfFull, (x) => fmtPct(x, 2))} — ${met(s.bytesTargetMet)}`,
        ],
        ['delta write ms median / max', medMax(s.writeMs, fmtMs)],
        ['delta sync ms (delta view) median / max', medMax(s.syncMs, fmtMs)],
        ['delta longest stall ms median / max', medMax(s.maxStallMs, fmtMs)],
        [
          'final chains refer to MiB (read amplification)',
          `${fmtMiB(s.referencedBytes)} (${fmtRatio(s.readAmplification)} the full checkpoint)`,
        ],
        [
          'longest chain / files referred to',
          `${r.rounds.at(-1)!.longestChain} / ${r.rounds.at(-1)!.filesReferred}`,
        ],
        [
          `restore incremental ms (median of ${INCREMENTAL.restoreRepetitions})`,
          restoreText(rs.incremental),
        ],
        [`restore full ms (median of ${INCREMENTAL.restoreRepetitions})`, restoreText(rs.full)],
        [
          `restore incremental / full (target <= ${fmtRatio(INCREMENTAL.maxRestoreRatio)})`,
          `${fmtRatio(rs.ratio)} — ${met(s.restoreTargetMet)} (fastest vs fastest ` +
            `${fmtRatio(rs.incremental.minMs / rs.full.minMs)})`,
        ],
        [
          'restored state (both, every repetition)',
          `${fmtInt(r.state.entries)} entries, digest ${r.state.hash} = live state`,
        ],
      ],
    ),
  );
  console.log(
    '\nwrite ms: from the delta view (or snapshot) to the fsynced file; longest stall: the longest\n' +
      'gap between two turns of the event loop meanwhile (what a job would wait). restore: read\n' +
      'every key group of the final handle (readKeyGroupsLazily: positioned reads, CRC checks), then\n' +
      'restore it lazily into a fresh backend (restoreKeyGroupLazily) and decode every key group (a chain: its blocks applied in order); page cache warm for both' +
      (r.gcBetweenRestores ? '; a full GC before each.' : '.'),
  );
};

const runIncrementalPart = async (opts: {
  keys: number;
  increments: number;
  seed: number;
  workDir: string;
}): Promise<IncrementalResult> => {
  const engine = await loadEngine();
  // Warm-up (not reported): the same cycle on a small state, so the measured one is not cold.
  await incrementalCycle(engine, {
    keys: Math.min(100_000, opts.keys),
    increments: 3,
    seed: opts.seed + 1,
    workDir: opts.workDir,
    restoreRepetitions: 1,
    log: false,
  });
  const r = await incrementalCycle(engine, {
    ...opts,
    restoreRepetitions: INCREMENTAL.restoreRepetitions,
    log: true,
  });
  printIncremental(r);
  return r;
};

const writeResults = (name: string, date: Date, result: object): void => {
  const resultsDir = join(DATA_ROOT, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const resultFile = join(resultsDir, `${name}-${date.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(resultFile, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nresults: ${relative(REPO, resultFile)}`);
};

const printHeader = (title: string, date: Date) => {
  const host = machine();
  const engine = engineVersion();
  console.log(`${title} — ${date.toISOString()}`);
  console.log(`machine: ${describeMachine(host)}`);
  console.log(
    `engine: commit ${engine.commit}${engine.dirtySrc ? ' + uncommitted changes in src/' : ''}`,
  );
  const loadAtStart = loadavg();
  console.log(
    `load average at start: ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}` +
      (loadAtStart[0]! > 0.5 ? ' (the machine is busy: numbers will be noisy)' : ''),
  );
  return { host, engine, loadAtStart };
};

// --------------------------------------------------------------------------------------------

const benchmark = async (argv: string[]): Promise<number> => {
  const values = parseBenchArgs(
    argv,
    {
      keys: { type: 'string' },
      'events-per-key': { type: 'string' },
      modes: { type: 'string' },
      interval: { type: 'string' },
      rounds: { type: 'string' },
      parallelism: { type: 'string' },
      files: { type: 'string' },
      seed: { type: 'string' },
      'disk-mib': { type: 'string' },
      timeout: { type: 'string' },
      dir: { type: 'string' },
      increments: { type: 'string' },
      'no-incremental': { type: 'boolean' },
      'incremental-only': { type: 'boolean' },
      quick: { type: 'boolean' },
      'keep-output': { type: 'boolean' },
      'write-only': { type: 'boolean' },
    },
    HELP,
  );
  if (typeof values === 'number') return values;
  const str = (k: string) => values[k] as string | undefined;
  const quick = values.quick === true;
  const keysOpt = str('keys') === undefined ? undefined : numberList('keys', str('keys')!, true);
  const workDir = resolve(str('dir') ?? tmpdir());
  mkdirSync(workDir, { recursive: true });
  if (values['write-only'] === true) {
    return writeOnlyBenchmark({
      keys: keysOpt?.[0] ?? WRITE_ONLY.keys,
      rounds: positiveInt('rounds', str('rounds'), WRITE_ONLY.rounds),
      workDir,
    });
  }
  const seed = positiveInt('seed', str('seed'), DEFAULTS.seed);
  const incrementalOpts = {
    keys:
      keysOpt === undefined
        ? quick
          ? QUICK.incrementalKeys
          : INCREMENTAL.keys
        : Math.max(...keysOpt),
    increments: positiveInt('increments', str('increments'), INCREMENTAL.increments),
    seed,
    workDir,
  };
  if (values['incremental-only'] === true) {
    const date = new Date();
    const { host, engine, loadAtStart } = printHeader('incremental checkpoint benchmark', date);
    const incremental = await runIncrementalPart(incrementalOpts);
    const loadAtEnd = loadavg();
    console.log(`load average at end: ${loadAtEnd.map((l) => l.toFixed(2)).join(' ')}`);
    writeResults('checkpoint-incremental', date, {
      bench: 'checkpoint --incremental-only',
      date: date.toISOString(),
      machine: host,
      engine,
      loadAverage: { start: loadAtStart, end: loadAtEnd },
      options: { ...INCREMENTAL, ...incrementalOpts },
      incremental,
    });
    return 0;
  }
  const keys = keysOpt ?? (quick ? QUICK.keys : DEFAULTS.keys);
  const perKeyOpt =
    str('events-per-key') === undefined
      ? quick
        ? QUICK.eventsPerKey
        : keysOpt === undefined
          ? DEFAULTS.eventsPerKey
          : [DEFAULTS.eventsPerKey[0]!]
      : numberList('events-per-key', str('events-per-key')!, false);
  if (perKeyOpt.length !== 1 && perKeyOpt.length !== keys.length) {
    throw new BenchFailure(
      `--events-per-key needs one value or one per key count (${keys.length}), got ${perKeyOpt.length}`,
    );
  }
  const eventsPerKey = keys.map((_, i) => perKeyOpt[perKeyOpt.length === 1 ? 0 : i]!);
  const modes = str('modes') === undefined ? [...DEFAULTS.modes] : modeList(str('modes')!);
  const intervalMs = positiveInt(
    'interval',
    str('interval'),
    quick ? QUICK.intervalMs : DEFAULTS.intervalMs,
  );
  const rounds = positiveInt('rounds', str('rounds'), quick ? QUICK.rounds : DEFAULTS.rounds);
  const parallelism = positiveInt('parallelism', str('parallelism'), DEFAULTS.parallelism);
  const files = positiveInt('files', str('files'), DEFAULTS.files);
  const diskMiB = positiveInt(
    'disk-mib',
    str('disk-mib'),
    quick ? QUICK.diskMiB : DEFAULTS.diskMiB,
  );
  const timeoutMs = positiveInt('timeout', str('timeout'), DEFAULTS.timeoutSec) * 1000;
  const keepOutput = values['keep-output'] === true;
  const withIncremental = values['no-incremental'] !== true;
  const date = new Date();
  const { host, engine, loadAtStart } = printHeader('checkpoint benchmark', date);
  const configs: ConfigId[] = ['no-checkpoints', ...modes];
  console.log(
    `eddy run examples/keyed-sum.ts -p ${parallelism}, checkpoint interval ${intervalMs} ms; ` +
      `${rounds} round(s) x {${configs.join(', ')}} per key count (interleaved); ` +
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
    outer: for (let round = 1; round <= rounds; round++) {
      // Rotate the order each round: no configuration always runs first (cold) or last.
      const order = configs.map((_, j) => configs[(j + round - 1) % configs.length]!);
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
          failure = `${configLabel(config)} run (round ${round}) ${reason}`;
          console.log(
            `  round ${round}  ${configLabel(config).padEnd(16)} ${reason.toUpperCase()}`,
          );
          if (e instanceof RunFailed) console.log(e.detail.replace(/^/gm, '    '));
          break outer;
        }
        if (r.output.lines !== m.events) {
          failure = `${configLabel(config)} run (round ${round}) wrote ${r.output.lines} lines, expected ${m.events}`;
        } else if (reference !== undefined && !sameDigest(r.output, reference.output)) {
          failure =
            `${configLabel(config)} run (round ${round}) output differs from the ` +
            `${configLabel(reference.config)} run's (digest ${r.output.hash} vs ${reference.output.hash})`;
        }
        reference ??= r;
        runs.push(r);
        const chk = r.checkpoints;
        const newest = newestRetained(r);
        const chkText =
          config === 'no-checkpoints'
            ? ''
            : `  ${chk.length} checkpoints` +
              (chk.length > 0
                ? ` (sync med ${fmtMs(median(chk.map((c) => c.syncMs)))} ms, async med ` +
                  `${fmtMs(median(chk.map((c) => c.asyncMs)))} ms, written med ` +
                  `${fmtMiB(median(chk.map((c) => c.bytes)))} MiB, last ${fmtMiB(chk.at(-1)!.bytes)} MiB` +
                  (newest === undefined
                    ? ''
                    : `; newest kept ${fmtMiB(newest.onDiskBytes)} MiB on disk, state ${fmtMiB(newest.keyedStateBytes)} MiB`) +
                  ')'
                : '') +
              (r.failedCheckpoints.length > 0 ? `, ${r.failedCheckpoints.length} failed` : '');
        console.log(
          `  round ${round}  ${configLabel(config).padEnd(16)} ${fmtInt(r.eventsPerSec).padStart(10)} ev/s  ` +
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
    const summary = failure === undefined ? summarize(runs, modes, disk, k, intervalMs) : undefined;
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

  let incremental: IncrementalResult | undefined;
  let incrementalFailure: string | undefined;
  if (withIncremental) {
    console.log('');
    try {
      incremental = await runIncrementalPart(incrementalOpts);
    } catch (e) {
      if (!(e instanceof BenchFailure)) throw e;
      incrementalFailure = e.message;
      exitCode = 1;
      console.log(`\nincremental checkpoints in process: FAILED — ${e.message}`);
    }
  }

  const loadAtEnd = loadavg();
  console.log(`load average at end: ${loadAtEnd.map((l) => l.toFixed(2)).join(' ')}`);
  writeResults('checkpoint', date, {
    bench: 'checkpoint',
    date: date.toISOString(),
    machine: host,
    engine,
    loadAverage: { start: loadAtStart, end: loadAtEnd },
    options: {
      keys,
      eventsPerKey,
      modes,
      intervalMs,
      rounds,
      parallelism,
      files,
      seed,
      diskMiB,
      timeoutMs,
      workDir,
      quick,
      incremental: withIncremental ? { ...INCREMENTAL, ...incrementalOpts } : false,
    },
    cases,
    ...(incremental === undefined ? {} : { incremental }),
    ...(incrementalFailure === undefined ? {} : { incrementalFailure }),
  });
  return exitCode;
};

export const main = benchMain('checkpoint', benchmark);
