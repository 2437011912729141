/**
 * rescale benchmark: restore keyed state at a new parallelism (docs/DESIGN.md §2), eddy's key-group
 * reads side by side with the two strategies the design rejects and the physical floor.
 *
 *   npm run bench -- rescale [--keys 1000000,10000000] [--cases 2:3,3:2,4:1,1:4] [--quick]
 *
 * Per key count N and old parallelism P, a checkpoint is made once (and cached under
 * bench/.data/rescale-<N>-p<P>/) by running keyed-sum over N keys x 1 event (cover layout) with
 * a checkpoint interval longer than the job: the final checkpoint at the end of the input holds
 * all N keys of the running sum (uid `running-sum`). Then per case P -> P' the strategies run
 * in this process, one after another, `--rounds` times (medians), page cache warm for all:
 *
 * - eddy: per new subtask, for every old file whose key-group range intersects its range,
 *   `readKeyGroupsLazily` (positioned reads of only those blocks, coalesced up to 8 MiB,
 *   CRC-checked, not decoded) into a fresh `HeapKeyedStateBackend` via `restoreKeyGroupLazily`
 *   — what `loadRestoredState` in worker-agent.ts and the subtask do. Decoding moves to the
 *   first access of each key group, after the pause; the keys are counted (untimed) after.
 * - eddy-eager: the same blocks read, decoded and put into the backend at restore
 *   (`forEachKeyGroup` + `restoreKeyGroup`, the engine before lazy restore): the pause if every
 *   key group were needed at once, and the total decode cost lazy restore spreads out.
 * - read-all (rejected): every new subtask reads every old keyed file whole, decodes every
 *   block, computes each key's key group with `assignToKeyGroup` and restores only its own keys.
 * - per-key index (rejected): a bench-only copy of the state with each key's entry as its own
 *   msgpack record, plus an in-memory index key -> (file, offset, length) sorted by key group
 *   (generous: a new subtask finds its keys without scanning the whole index); each new subtask
 *   does one positioned `readSync` per key it owns, decodes it and restores it. Bytes read =
 *   records + the subtask's index entries (key bytes + 16 B each). Above `--sample` keys it is
 *   timed on an evenly spaced sample and extrapolated linearly (labelled as such).
 * - floor: per new subtask, the bytes it needs, one read per overlapping old file (the needed
 *   range of a file is contiguous) + decoding every block (`decodeKeyGroupBlock`); no CRC, no
 *   restore into a backend.
 *
 * Time per strategy: `seq` = all new subtasks one after another; `par` = the slowest new subtask
 * (the estimate of the pause when the subtasks restore in parallel on their own threads, as the
 * engine does). Target: eddy par <= 1.5 x floor par. End to end, once per case, the engine
 * itself: `eddy run --from-savepoint <chk> -p P'` over the finished input; its per-subtask
 * `restored running-sum[i] ... in X ms` lines (max = engine restore) and the process wall time.
 *
 * Pause vs state size (`--pause-vs-state` runs only this part, `--no-pause-vs-state` skips it;
 * both parts run by default): per `--state-keys` N, keyed-sum runs at p=2 over N + max(N,
 * `--tail-events`) events in 2 files (cover layout: every key once, then more), with
 * `--checkpoint-interval` (1000 ms) in `--checkpoint-mode full` and `incremental`, modes
 * interleaved round by round. Once the REST API shows every key in state and a checkpoint
 * triggered after that completed, `eddy rescale <id> 3`: the pause and its phases (the job's
 * `rescaled` line), the bytes the restore read (the report), the bytes the final snapshot wrote
 * (its metadata: a full savepoint, or the final incremental checkpoint). The job then runs to
 * the end of its input and must exit 0 with exactly keyed-sum's output.
 */

import { spawn } from 'node:child_process';
import {
  closeSync,
  cpSync,
  createReadStream,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { packBlock, unpackBlock } from '../src/checkpoint/block-codec.js';
import { isIncremental, stateBytesOf } from '../src/checkpoint/chains.js';
import {
  type AnyKeyedStateHandle,
  decodeKeyGroupBlock,
  forEachKeyGroup,
  type KeyedStateHandle,
  loadMetadata,
  type OperatorStateEntry,
  planOperatorRestore,
  readKeyGroupsLazily,
} from '../src/checkpoint/index.js';
import {
  assignToKeyGroup,
  computeKeyGroupRange,
  intersectKeyGroupRanges,
  type KeyGroupRange,
} from '../src/keygroups/index.js';
import { HeapKeyedStateBackend } from '../src/state/index.js';
import type { KeyGroupSnapshot, StateKind } from '../src/state/types.js';
import { type CheckpointLine, parseCheckpointLine } from './checkpoint-parse.js';
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
  runChild,
  table,
} from './common.js';
import {
  DATA_ROOT,
  type DigestValue,
  digestDir,
  ensureKeyedSumData,
  type KeyedSumDataParams,
  LineDigest,
  sameDigest,
} from './data.js';
import { renderRescaleChart } from './rescale-chart.js';

const JOB = join(REPO, 'examples', 'keyed-sum.ts');
const UID = 'running-sum';

const DEFAULTS = {
  keys: [1_000_000, 10_000_000],
  cases: [
    [2, 3],
    [3, 2],
    [4, 1],
    [1, 4],
  ] as Array<[number, number]>,
  rounds: 3,
  sample: 200_000,
  files: 8,
  seed: 42,
  timeoutSec: 900,
};
const QUICK = { keys: [100_000], rounds: 2 };

type CheckpointMode = 'full' | 'incremental';
const MODES: readonly CheckpointMode[] = ['full', 'incremental'];

const PAUSE_DEFAULTS = {
  stateKeys: [100_000, 1_000_000, 5_000_000],
  intervalMs: 1000,
  /**
   * Events after the pass that loads every key: at least this many, and at least the keys. The
   * job must still run when the rescale stops it: after the load it waits for a checkpoint
   * (one that took 6.7 s was seen under load) and for the new threads (~1-2 s).
   */
  tailEvents: 4_000_000,
  /** One input file per source subtask at p=2: each reader's first pass is its file's head. */
  files: 2,
  from: 2,
  to: 3,
};

const HELP = `usage: npm run bench -- rescale [options]

Two parts, both by default: the restore strategies side by side (in-process, from cached
checkpoints), then the pause of \`eddy rescale\` vs the state size (running jobs, both
checkpoint modes).

restore strategies:
  --keys <list>     key counts in state, comma-separated (default ${DEFAULTS.keys.join(',')})
  --cases <list>    old:new parallelism pairs (default ${DEFAULTS.cases.map((c) => c.join(':')).join(',')})
  --rounds <n>      rounds, medians reported (default ${DEFAULTS.rounds}; both parts)
  --sample <n>      per-key index baseline: time at most this many keys per case, extrapolate
                    linearly (default ${DEFAULTS.sample})
  --no-e2e          skip the end-to-end eddy run --from-savepoint per case
  --no-pause-vs-state  only this part

pause vs state size (eddy rescale ${PAUSE_DEFAULTS.from} -> ${PAUSE_DEFAULTS.to} of a running keyed-sum, full vs incremental):
  --pause-vs-state  only this part
  --state-keys <list>  key counts in state (default ${PAUSE_DEFAULTS.stateKeys.join(',')})
  --checkpoint-interval <ms>  the job's checkpoint interval (default ${PAUSE_DEFAULTS.intervalMs})
  --tail-events <n> events after the pass that loads every key: max(keys, n) (default
                    ${PAUSE_DEFAULTS.tailEvents}); the job must still run when the rescale ends
  --rate <n>        throttle the job's input to n events/s (default: unthrottled)

  --timeout <s>     limit for each eddy child process (default ${DEFAULTS.timeoutSec})
  --quick           smoke run: ${QUICK.keys[0]} keys in both parts, ${QUICK.rounds} rounds (explicit options still win)
  -h, --help        this help`;

type StrategyId = 'eddy' | 'eddy-eager' | 'read-all' | 'per-key' | 'floor' | 'floor+restore';
const STRATEGIES: StrategyId[] = [
  'eddy',
  'eddy-eager',
  'read-all',
  'per-key',
  'floor',
  'floor+restore',
];

interface StrategyRun {
  /** All new subtasks one after another, ms. */
  readonly seqMs: number;
  /** The slowest new subtask, ms (parallel estimate). */
  readonly parMs: number;
  readonly bytesRead: number;
  /** Keys restored (or decoded, for the floor) over all new subtasks. */
  readonly keys: number;
  /** Fraction of the keys actually timed (per-key index sample); 1 otherwise. */
  readonly sampled: number;
}

interface StrategyResult {
  readonly seqMs: number;
  readonly parMs: number;
  readonly bytesRead: number;
  readonly readAmplification: number;
  readonly keys: number;
  readonly extrapolated: boolean;
  readonly rounds: StrategyRun[];
}

interface EndToEnd {
  readonly wallMs: number;
  /** Max over new subtasks of the engine's own `restored running-sum[i] ... in X ms`. */
  readonly engineRestoreMs: number;
  readonly engineRestoreMsPerSubtask: number[];
  /** `finished in X s` (job time: workers start, restore, run, final checkpoint). */
  readonly jobMs: number | undefined;
  readonly failure?: string;
}

interface CaseResult {
  readonly keys: number;
  readonly from: number;
  readonly to: number;
  readonly maxParallelism: number;
  readonly checkpointBytes: number;
  readonly bytesNeeded: number;
  readonly strategies: Record<StrategyId, StrategyResult>;
  readonly eddyVsFloorPar: number;
  readonly eddyVsFloorSeq: number;
  /** eddy par / floor+restore par: the cost of eddy's reads beyond the bare minimum. */
  readonly eddyVsFloorRestorePar: number;
  readonly endToEnd?: EndToEnd;
  readonly loadAverage: [number, number];
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

interface CachedCheckpoint {
  readonly root: string;
  /** The chk-<id> directory. */
  readonly dir: string;
  /** The job's committed output (the file sink's state refers to it; copied for e2e runs). */
  readonly output: string;
  readonly input: string;
  readonly entry: OperatorStateEntry;
}

const ensureCheckpoint = async (
  keys: number,
  p: number,
  input: string,
  timeoutMs: number,
): Promise<CachedCheckpoint> => {
  const root = join(DATA_ROOT, `rescale-${keys}-p${p}`);
  const done = join(root, '_done.json');
  let cached = false;
  try {
    cached = JSON.parse(readFileSync(done, 'utf8')).input === input;
  } catch {}
  if (!cached) {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(join(root, 'out'), { recursive: true });
    const started = performance.now();
    const child = await runChild(
      [
        EDDY,
        'run',
        JOB,
        '-p',
        String(p),
        '--no-progress',
        '--checkpoint-interval',
        '600000000',
        '--checkpoint-dir',
        join(root, 'chk'),
        '--',
        '--input',
        input,
        '--output',
        join(root, 'out'),
      ],
      { timeoutMs },
    );
    if (child.code !== 0) {
      throw new BenchFailure(
        `making the checkpoint (${keys} keys, -p ${p}) failed (${child.timedOut ? 'timed out' : `exit ${child.code} ${child.signal ?? ''}`}):\n${child.stderr.slice(-2000)}`,
      );
    }
    writeFileSync(done, JSON.stringify({ input, keys, p, at: new Date().toISOString() }));
    console.log(
      `  checkpoint ${keys} keys at -p ${p} made in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  const chks = readdirSync(join(root, 'chk'))
    .filter((n) => /^chk-\d+$/.test(n))
    .sort((a, b) => Number(b.slice(4)) - Number(a.slice(4)));
  if (chks.length === 0) throw new BenchFailure(`no checkpoint in ${join(root, 'chk')}`);
  const dir = join(root, 'chk', chks[0]!);
  const metadata = await loadMetadata(dir);
  const entry = metadata.operators.find((o) => o.uid === UID);
  if (!entry) throw new BenchFailure(`checkpoint ${dir} has no operator ${UID}`);
  return { root, dir, output: join(root, 'out'), input, entry };
};

/**
 * The keyed handles of `entry`, full or incremental (chains of blocks in shared files): the
 * engine's readers (`readKeyGroupsLazily`, `forEachKeyGroup`) and the byte counts
 * (`stateBytesOf`) take both.
 */
const keyedHandles = (entry: OperatorStateEntry): AnyKeyedStateHandle[] =>
  entry.subtasks.flatMap((s) => (s.keyed ? [s.keyed] : []));

/**
 * The full keyed handles of `entry`, for the rejected strategies and the floor, which read
 * whole `.keyed` files block by block. An incremental handle's key groups are chains (base +
 * deltas to apply) spread over shared files, which those bench-only readers do not merge: it is
 * refused rather than silently left out. (The cached checkpoints of this part are always full:
 * `ensureCheckpoint` runs without `--checkpoint-mode`.)
 */
const fullHandles = (entry: OperatorStateEntry): KeyedStateHandle[] =>
  keyedHandles(entry).map((h) => {
    if (isIncremental(h)) {
      throw new BenchFailure(
        `${entry.uid} has an incremental keyed handle; the read-all, per-key and floor ` +
          'strategies read full checkpoints only: delete the cached checkpoint under ' +
          'bench/.data/ and make it again with incremental checkpoints off',
      );
    }
    return h;
  });

/** Bytes of the keyed state a restore of all of `entry` reads (chains: base + deltas). */
const keyedStateBytes = (entry: OperatorStateEntry): number =>
  keyedHandles(entry).reduce((n, h) => n + stateBytesOf(h), 0);

const newBackend = (range: KeyGroupRange, maxParallelism: number) =>
  new HeapKeyedStateBackend({ keyGroupRange: range, maxParallelism });

const keysIn = (s: KeyGroupSnapshot) => s.states.reduce((n, st) => n + st.entries.length, 0);

// ---------------------------------------------------------------------------------------------
// Strategies, per case: each returns one round's numbers.

interface Tally {
  bytes: number;
  keys: number;
}

/**
 * Restores every new subtask of `to` one after another, timing each: `body` does one
 * strategy's work for one new subtask's key-group range (into `backend` when given).
 */
const timeSubtasks = async (
  c: CachedCheckpoint,
  to: number,
  withBackend: boolean,
  body: (
    range: KeyGroupRange,
    backend: HeapKeyedStateBackend | undefined,
    t: Tally,
  ) => Promise<void>,
  /** Untimed, after each subtask's body: e.g. counting what a lazy restore holds. */
  after?: (backend: HeapKeyedStateBackend, t: Tally) => void,
): Promise<StrategyRun> => {
  const maxP = c.entry.maxParallelism;
  const times: number[] = [];
  const tally: Tally = { bytes: 0, keys: 0 };
  for (let i = 0; i < to; i++) {
    const range = computeKeyGroupRange(maxP, to, i);
    const t0 = performance.now();
    const backend = withBackend ? newBackend(range, maxP) : undefined;
    await body(range, backend, tally);
    times.push(performance.now() - t0);
    if (backend && after) after(backend, tally);
    backend?.dispose();
  }
  return summarizeRun(times, tally.bytes, tally.keys, 1);
};

const runEddy = (c: CachedCheckpoint, to: number): Promise<StrategyRun> =>
  timeSubtasks(
    c,
    to,
    true,
    async (range, backend, t) => {
      for (const h of keyedHandles(c.entry)) {
        const overlap = intersectKeyGroupRanges(range, {
          start: h.keyGroupRange[0],
          end: h.keyGroupRange[1],
        });
        if (!overlap) continue;
        const read = await readKeyGroupsLazily(c.dir, h, overlap);
        t.bytes += read.bytesRead;
        for (const g of read.groups) backend!.restoreKeyGroupLazily(g);
      }
    },
    // Decodes every pending key group: checks the lazy restore holds exactly the keys.
    (backend, t) => {
      t.keys += backend.numEntries();
    },
  );

const runEddyEager = (c: CachedCheckpoint, to: number): Promise<StrategyRun> =>
  timeSubtasks(c, to, true, async (range, backend, t) => {
    for (const h of keyedHandles(c.entry)) {
      const overlap = intersectKeyGroupRanges(range, {
        start: h.keyGroupRange[0],
        end: h.keyGroupRange[1],
      });
      if (!overlap) continue;
      t.bytes += await forEachKeyGroup(c.dir, h, overlap, (s) => {
        t.keys += keysIn(s);
        backend!.restoreKeyGroup(s);
      });
    }
  });

const runReadAll = (c: CachedCheckpoint, to: number): Promise<StrategyRun> =>
  timeSubtasks(c, to, true, async (range, backend, t) => {
    const maxP = c.entry.maxParallelism;
    for (const h of fullHandles(c.entry)) {
      const buf = await readFile(join(c.dir, h.file));
      t.bytes += buf.length;
      for (const b of h.blocks) {
        const s = decodeKeyGroupBlock(buf.subarray(b.offset, b.offset + b.length));
        // No key groups in this design: every key is hashed to see whether it is ours.
        const states = [];
        for (const st of s.states) {
          const mine = st.entries.filter(([k]) => {
            const kg = assignToKeyGroup(k as string, maxP);
            return kg >= range.start && kg <= range.end;
          });
          if (mine.length > 0) states.push({ ...st, entries: mine });
        }
        if (states.length === 0) continue;
        const kept = { keyGroup: s.keyGroup, states };
        t.keys += keysIn(kept);
        backend!.restoreKeyGroup(kept);
      }
    }
  });

/** The bench-only per-key layout: every entry its own record; index sorted by key group. */
interface PerKeyIndex {
  readonly files: string[];
  readonly file: Uint8Array;
  readonly offset: Float64Array;
  readonly length: Uint32Array;
  readonly keyGroup: Uint16Array;
  /** The entry's state (index into stateNames): records hold only [key, value]. */
  readonly state: Uint8Array;
  readonly stateNames: ReadonlyArray<{ name: string; kind: StateKind | undefined }>;
  /** Serialised size of each index entry: key bytes + 16 (file, offset, length, key group). */
  readonly indexBytes: Uint32Array;
  /** Entries of key group kg: [first[kg], first[kg + 1]). */
  readonly first: Uint32Array;
}

const perKeyIndexes = new Map<string, PerKeyIndex>();

const buildPerKeyIndex = async (c: CachedCheckpoint): Promise<PerKeyIndex> => {
  const cached = perKeyIndexes.get(c.dir);
  if (cached) return cached;
  perKeyIndexes.clear(); // one at a time: they are large at 10M keys
  const maxP = c.entry.maxParallelism;
  const dir = join(c.root, 'per-key');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const handles = fullHandles(c.entry);
  const total = handles.reduce((n, h) => n + h.bytes, 0);
  // Upper bound on the number of entries: count them while writing, arrays grown on demand.
  let cap = 1 << 16;
  let fileA = new Uint8Array(cap);
  let offA = new Float64Array(cap);
  let lenA = new Uint32Array(cap);
  let kgA = new Uint16Array(cap);
  let ixA = new Uint32Array(cap);
  let stA = new Uint8Array(cap);
  let n = 0;
  const stateNames: Array<{ name: string; kind: StateKind | undefined }> = [];
  const grow = () => {
    cap *= 2;
    const g = <T extends Uint8Array | Float64Array | Uint32Array | Uint16Array>(a: T, b: T): T => {
      b.set(a as never);
      return b;
    };
    fileA = g(fileA, new Uint8Array(cap));
    offA = g(offA, new Float64Array(cap));
    lenA = g(lenA, new Uint32Array(cap));
    kgA = g(kgA, new Uint16Array(cap));
    ixA = g(ixA, new Uint32Array(cap));
    stA = g(stA, new Uint8Array(cap));
  };
  const files: string[] = [];
  for (const [fi, h] of handles.entries()) {
    const name = `${h.file}.perkey`;
    files.push(join(dir, name));
    const buf = await readFile(join(c.dir, h.file));
    const fd = openSync(join(dir, name), 'w');
    let pos = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = () => {
      const all = Buffer.concat(pending);
      writeSync(fd, all);
      pending = [];
      pendingBytes = 0;
    };
    for (const b of h.blocks) {
      const s = decodeKeyGroupBlock(buf.subarray(b.offset, b.offset + b.length));
      for (const st of s.states) {
        for (const [k, v] of st.entries) {
          let si = stateNames.findIndex((x) => x.name === st.name);
          if (si < 0) si = stateNames.push({ name: st.name, kind: st.kind }) - 1;
          const rec = Buffer.from(packBlock([k, v]));
          if (n === cap) grow();
          fileA[n] = fi;
          offA[n] = pos;
          lenA[n] = rec.length;
          kgA[n] = s.keyGroup;
          stA[n] = si;
          ixA[n] = Buffer.byteLength(String(k)) + 16;
          n++;
          pos += rec.length;
          pending.push(rec);
          pendingBytes += rec.length;
          if (pendingBytes >= MiB) flush();
        }
      }
    }
    flush();
    closeSync(fd);
  }
  void total;
  // Entries are already grouped by key group (files hold disjoint ascending ranges, blocks
  // ascend): sort the entry order by key group to index them.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => kgA[a]! - kgA[b]! || a - b);
  const perm = <T extends Uint8Array | Float64Array | Uint32Array | Uint16Array>(
    a: T,
    out: T,
  ): T => {
    for (let i = 0; i < n; i++) out[i] = a[order[i]!]!;
    return out;
  };
  const keyGroup = perm(kgA, new Uint16Array(n));
  const first = new Uint32Array(maxP + 1);
  for (let i = 0; i < n; i++) first[keyGroup[i]! + 1]!++;
  for (let kg = 0; kg < maxP; kg++) first[kg + 1]! += first[kg]!;
  const index: PerKeyIndex = {
    files,
    file: perm(fileA, new Uint8Array(n)),
    offset: perm(offA, new Float64Array(n)),
    length: perm(lenA, new Uint32Array(n)),
    keyGroup,
    state: perm(stA, new Uint8Array(n)),
    stateNames,
    indexBytes: perm(ixA, new Uint32Array(n)),
    first,
  };
  perKeyIndexes.set(c.dir, index);
  return index;
};

const runPerKey = async (c: CachedCheckpoint, to: number, sample: number): Promise<StrategyRun> => {
  const maxP = c.entry.maxParallelism;
  const ix = await buildPerKeyIndex(c);
  const total = ix.length.length;
  const stride = Math.max(1, Math.ceil(total / sample));
  const fds = ix.files.map((f) => openSync(f, 'r'));
  const buf = Buffer.allocUnsafe(64 * 1024);
  const times: number[] = [];
  let bytes = 0;
  let keys = 0;
  let timedKeys = 0;
  try {
    for (let i = 0; i < to; i++) {
      const range = computeKeyGroupRange(maxP, to, i);
      const lo = ix.first[range.start]!;
      const hi = ix.first[range.end + 1]!;
      // Bytes this subtask reads: its records and its part of the index (exact, all keys).
      for (let e = lo; e < hi; e++) bytes += ix.length[e]! + ix.indexBytes[e]!;
      keys += hi - lo;
      const t0 = performance.now();
      const backend = newBackend(range, maxP);
      let timed = 0;
      for (let e = lo; e < hi; e += stride) {
        const len = ix.length[e]!;
        const got = readSync(fds[ix.file[e]!]!, buf, 0, len, ix.offset[e]!);
        if (got !== len) throw new BenchFailure(`short read in the per-key index file`);
        const [k, v] = unpackBlock(buf.subarray(0, len)) as [string, unknown];
        const { name, kind } = ix.stateNames[ix.state[e]!]!;
        backend.restoreKeyGroup({
          keyGroup: ix.keyGroup[e]!,
          states: [
            kind === undefined ? { name, entries: [[k, v]] } : { name, kind, entries: [[k, v]] },
          ],
        });
        timed++;
      }
      const ms = performance.now() - t0;
      timedKeys += timed;
      // Extrapolate linearly to all the subtask's keys.
      times.push(timed === 0 ? 0 : (ms * (hi - lo)) / timed);
      backend.dispose();
    }
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  return summarizeRun(times, bytes, keys, keys === 0 ? 1 : timedKeys / keys);
};

const runFloor = (c: CachedCheckpoint, to: number, restore: boolean): Promise<StrategyRun> =>
  timeSubtasks(c, to, restore, async (range, backend, t) => {
    for (const h of fullHandles(c.entry)) {
      const blocks = h.blocks.filter((b) => b.keyGroup >= range.start && b.keyGroup <= range.end);
      if (blocks.length === 0) continue;
      const start = blocks[0]!.offset;
      const last = blocks[blocks.length - 1]!;
      const length = last.offset + last.length - start;
      const fd = openSync(join(c.dir, h.file), 'r');
      const buf = Buffer.allocUnsafe(length);
      try {
        let got = 0;
        while (got < length) {
          const r = readSync(fd, buf, got, length - got, start + got);
          if (r === 0) throw new BenchFailure(`${h.file} is shorter than its metadata says`);
          got += r;
        }
      } finally {
        closeSync(fd);
      }
      t.bytes += length;
      for (const b of blocks) {
        const snap = decodeKeyGroupBlock(
          buf.subarray(b.offset - start, b.offset - start + b.length),
        );
        t.keys += keysIn(snap);
        backend?.restoreKeyGroup(snap);
      }
    }
  });

const summarizeRun = (
  times: number[],
  bytes: number,
  keys: number,
  sampled: number,
): StrategyRun => ({
  seqMs: times.reduce((a, b) => a + b, 0),
  parMs: Math.max(0, ...times),
  bytesRead: bytes,
  keys,
  sampled,
});

// ---------------------------------------------------------------------------------------------
// End to end: the engine restoring from the checkpoint at the new parallelism.

const RESTORED_LINE = /^restored running-sum\[(\d+)\]: .* read in ([\d.]+) ms$/gm;

const endToEnd = async (c: CachedCheckpoint, to: number, timeoutMs: number): Promise<EndToEnd> => {
  const tmp = mkdtempSync(join(tmpdir(), 'eddy-bench-rescale-'));
  try {
    // The file sink's state names the parts it committed: the output must be the one the
    // checkpoint was taken with (copied, so the cached one stays untouched).
    const out = join(tmp, 'out');
    cpSync(c.output, out, { recursive: true });
    const child = await runChild(
      [
        EDDY,
        'run',
        JOB,
        '-p',
        String(to),
        '--no-progress',
        '--restart-attempts',
        '0',
        '--from-savepoint',
        c.dir,
        '--checkpoint-dir',
        join(tmp, 'chk'),
        '--',
        '--input',
        c.input,
        '--output',
        out,
      ],
      { timeoutMs },
    );
    const per: number[] = new Array(to).fill(Number.NaN);
    for (const m of child.stderr.matchAll(RESTORED_LINE)) per[Number(m[1])] = Number(m[2]);
    const fin = /finished in ([\d.]+) s/.exec(child.stderr);
    const failure =
      child.code !== 0
        ? `exit ${child.code}${child.timedOut ? ' (timed out)' : ''}: ${child.stderr.trim().split('\n').slice(-2).join(' ')}`
        : per.some(Number.isNaN)
          ? 'missing restore lines'
          : undefined;
    return {
      wallMs: child.wallMs,
      engineRestoreMs: Math.max(...per),
      engineRestoreMsPerSubtask: per,
      jobMs: fin ? Number(fin[1]) * 1000 : undefined,
      ...(failure ? { failure } : {}),
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
};

// ---------------------------------------------------------------------------------------------

const fmtMs = (ms: number) =>
  !Number.isFinite(ms) ? '-' : ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
const fmtMiB = (b: number) => (b / MiB).toFixed(2);
const fmtCount = (n: number) =>
  n >= 1e6 && n % 1e5 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 100 === 0 ? `${n / 1e3}k` : fmtInt(n);

const measureCase = async (
  c: CachedCheckpoint,
  keys: number,
  to: number,
  rounds: number,
  sample: number,
  e2e: boolean,
  timeoutMs: number,
): Promise<CaseResult> => {
  const from = c.entry.parallelism;
  const plan = planOperatorRestore(c.entry, to);
  const load0 = loadavg()[0]!;
  const runs: Record<StrategyId, StrategyRun[]> = {
    eddy: [],
    'eddy-eager': [],
    'read-all': [],
    'per-key': [],
    floor: [],
    'floor+restore': [],
  };
  await buildPerKeyIndex(c); // not timed
  for (let r = 0; r < rounds; r++) {
    // Rotate the order each round so no strategy always runs right after another's garbage.
    const order = STRATEGIES.map((_, i) => STRATEGIES[(i + r) % STRATEGIES.length]!);
    for (const s of order) {
      globalThis.gc?.();
      const run =
        s === 'eddy'
          ? await runEddy(c, to)
          : s === 'eddy-eager'
            ? await runEddyEager(c, to)
            : s === 'read-all'
              ? await runReadAll(c, to)
              : s === 'per-key'
                ? await runPerKey(c, to, sample)
                : await runFloor(c, to, s === 'floor+restore');
      if (s !== 'floor' && run.keys !== keys) {
        throw new BenchFailure(
          `${s} restored ${run.keys} keys at ${from}->${to}, expected ${keys}`,
        );
      }
      runs[s].push(run);
    }
  }
  const strategies = Object.fromEntries(
    STRATEGIES.map((s) => {
      const rs = runs[s];
      const bytesRead = rs[0]!.bytesRead;
      return [
        s,
        {
          seqMs: median(rs.map((x) => x.seqMs)),
          parMs: median(rs.map((x) => x.parMs)),
          bytesRead,
          readAmplification: bytesRead / plan.bytesNeeded,
          keys: rs[0]!.keys,
          extrapolated: rs[0]!.sampled < 1,
          rounds: rs,
        } satisfies StrategyResult,
      ];
    }),
  ) as Record<StrategyId, StrategyResult>;
  if (strategies.eddy.bytesRead !== plan.bytesRead) {
    throw new BenchFailure(
      `eddy read ${strategies.eddy.bytesRead} bytes at ${from}->${to}, the restore plan says ${plan.bytesRead}`,
    );
  }
  const end = e2e ? await endToEnd(c, to, timeoutMs) : undefined;
  return {
    keys,
    from,
    to,
    maxParallelism: c.entry.maxParallelism,
    checkpointBytes: keyedStateBytes(c.entry),
    bytesNeeded: plan.bytesNeeded,
    strategies,
    eddyVsFloorPar: strategies.eddy.parMs / strategies.floor.parMs,
    eddyVsFloorSeq: strategies.eddy.seqMs / strategies.floor.seqMs,
    eddyVsFloorRestorePar: strategies.eddy.parMs / strategies['floor+restore'].parMs,
    ...(end ? { endToEnd: end } : {}),
    loadAverage: [load0, loadavg()[0]!],
  };
};

const printKeyCount = (keys: number, cases: CaseResult[]): void => {
  console.log(
    `\n${fmtCount(keys)} keys — times are medians; par = slowest new subtask, seq = all new subtasks in turn\n`,
  );
  const rows: string[][] = [];
  for (const c of cases) {
    for (const s of STRATEGIES) {
      const r = c.strategies[s];
      rows.push([
        s === 'eddy' ? `${c.from}->${c.to}` : '',
        s + (r.extrapolated ? ' *' : ''),
        fmtMs(r.parMs),
        fmtMs(r.seqMs),
        fmtMiB(r.bytesRead),
        r.readAmplification.toFixed(2),
        s === 'eddy'
          ? `${c.eddyVsFloorPar.toFixed(2)}x floor${c.eddyVsFloorPar <= 1.5 ? '' : ' (> 1.5x target)'}, ${c.eddyVsFloorRestorePar.toFixed(2)}x floor+restore`
          : s === 'eddy-eager'
            ? `${(r.parMs / c.strategies.floor.parMs).toFixed(2)}x floor`
            : s === 'floor' || s === 'floor+restore'
              ? ''
              : `${(r.parMs / c.strategies.eddy.parMs).toFixed(1)}x eddy`,
      ]);
    }
    const e = c.endToEnd;
    if (e) {
      rows.push([
        '',
        'eddy run (e2e)',
        fmtMs(e.engineRestoreMs),
        '',
        '',
        '',
        e.failure
          ? `FAILED: ${e.failure.slice(0, 80)}`
          : `wall ${fmtMs(e.wallMs)} ms, job ${fmtMs(e.jobMs ?? Number.NaN)} ms`,
      ]);
    }
  }
  console.log(table(['case', 'strategy', 'par ms', 'seq ms', 'MiB read', 'read amp', 'vs'], rows));
};

const NOTES = `
read amp = bytes read / bytes the new subtasks need (the key-group blocks they own, from the
restore plan); eddy's must be 1.00 (it has no per-read headers). eddy = the engine: blocks read
and CRC-checked, decoded on each key group's first access (after the pause); eddy-eager = the
same reads, decoded and put into the backend up front. * = per-key index timed on an
evenly spaced sample of keys and extrapolated linearly to all keys (bytes are exact). per-key
bytes include each subtask's part of the index (key + 16 B per key; the index is sorted by key
group, which is generous to this strategy). floor = read the needed bytes once (one read per
old file) + decode, no CRC check, no restore into a backend; floor+restore = the same plus
restoreKeyGroup into a HeapKeyedStateBackend (the restore work no strategy can skip). per-key
records hold only [key, value] (state name and kind once per file). All strategies run in this process
with the page cache warm (the files were just written or read); on cold or remote storage the
per-key strategy's many small reads and read-all's amplification cost far more.
eddy run (e2e): 'par ms' = the engine's own 'restored running-sum[i] ... in X ms' (max over
subtasks, in worker threads restoring concurrently). That time covers reading and the CRC check
(loadRestoredState); decoding happens on each key group's first access. wall = the whole CLI process (start-up,
compiling the job, worker start, restore, the finished input, a final checkpoint, shutdown).`;

// ---------------------------------------------------------------------------------------------
// Pause vs state size: `eddy rescale` of a running job, full savepoint vs final incremental
// checkpoint (issue 15 item 6).

/** One `eddy rescale 2 -> 3` of a running keyed-sum. */
interface PauseRun {
  readonly mode: CheckpointMode;
  readonly round: number;
  /** From stopping the job to its first record at the new parallelism (the report's pause). */
  readonly pauseMs: number;
  /** Stop + the final snapshot (full: the rescale savepoint; incremental: the final checkpoint). */
  readonly stopSnapshotMs: number;
  /** Start of the new generation + restore, to the subtasks running. */
  readonly startRestoreMs: number;
  /** Restore to the first record; undefined when the job saw none within the report's wait. */
  readonly firstRecordMs: number | undefined;
  /** The engine's restore time (the report's `in X ms`). */
  readonly restoreMs: number;
  /** New threads started before the stop, while the job ran (not in the pause). */
  readonly prepareMs: number;
  readonly keyGroups: number;
  readonly bytesRead: number;
  /** Bytes the restore did not read: each key group reads its chain on first use. */
  readonly bytesDeferred: number;
  /** Bytes the final snapshot wrote (keyed blocks + operator state), from its metadata. */
  readonly snapshotBytesWritten: number;
  /** Keyed state the final snapshot refers to (chains: base + deltas), what a restore of all reads. */
  readonly snapshotStateBytes: number;
  /** The final snapshot's own time, trigger to completion (its `completed` line). */
  readonly finalSnapshotMs: number;
  /**
   * Periodic checkpoints that completed between the stop request and the final snapshot: the
   * final snapshot was queued behind one in flight (1) or not (0).
   */
  readonly queuedBehind: number;
  /** Median time of the periodic checkpoints before the rescale (trigger to completion). */
  readonly periodicCheckpointMs: number;
  /** Median bytes the periodic checkpoints before the rescale wrote (as printed). */
  readonly periodicCheckpointBytes: number;
  /** The restore point the report names. */
  readonly via: string;
  /** Completed checkpoints before the rescale (`latestCompleted.id`). */
  readonly checkpointsBefore: number;
  readonly wallMs: number;
  readonly output: DigestValue;
}

interface PauseResult {
  readonly keys: number;
  readonly events: number;
  readonly mode: CheckpointMode;
  readonly runs: PauseRun[];
  readonly failures: string[];
  /** Medians over the runs. */
  readonly pauseMs: number;
  readonly stopSnapshotMs: number;
  readonly startRestoreMs: number;
  readonly firstRecordMs: number;
  readonly finalSnapshotMs: number;
  readonly periodicCheckpointMs: number;
  readonly snapshotBytesWritten: number;
  readonly bytesRead: number;
  readonly bytesDeferred: number;
  readonly snapshotStateBytes: number;
}

interface PauseOptions {
  readonly rounds: number;
  readonly intervalMs: number;
  readonly tailEvents: number;
  readonly rate: number | undefined;
  readonly timeoutMs: number;
}

/** A child `node` process whose stderr is watched while it runs. */
interface LiveChild {
  readonly stderr: () => string;
  /** The first match of `re` in stderr; rejects when the process exits first or at `deadline`. */
  readonly waitFor: (re: RegExp, what: string, deadline: number) => Promise<RegExpExecArray>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly running: () => boolean;
  /** SIGKILL, if still running (only this child: by its handle). */
  readonly kill: () => void;
}

const spawnLive = (args: string[], env: NodeJS.ProcessEnv): LiveChild => {
  const child = spawn(process.execPath, args, {
    cwd: REPO,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  let done = false;
  const waiters = new Set<() => void>();
  child.stderr.on('data', (b: Buffer) => {
    err += b.toString('utf8');
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, signal) => {
      done = true;
      for (const w of [...waiters]) w();
      r({ code, signal });
    }),
  );
  const waitFor = (re: RegExp, what: string, deadline: number) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(check, Math.max(0, deadline - Date.now()));
      function check() {
        const m = re.exec(err);
        const fail = (why: string) => {
          waiters.delete(check);
          clearTimeout(timer);
          reject(new BenchFailure(`${why} waiting for ${what}:\n${err.slice(-1500)}`));
        };
        if (m) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(m);
        } else if (done) fail('eddy run exited');
        else if (Date.now() >= deadline) fail('timed out');
      }
      waiters.add(check);
      check();
    });
  return {
    stderr: () => err,
    waitFor,
    exited,
    running: () => !done,
    kill: () => {
      if (!done) child.kill('SIGKILL');
    },
  };
};

/** Runs `node <args>` with `env` to its end (the `eddy rescale` client). */
const runWithEnv = (args: string[], env: NodeJS.ProcessEnv, timeoutMs: number) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: REPO,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString('utf8');
    });
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString('utf8');
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: out, stderr: err });
    });
  });

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** GET `url` as JSON; undefined while the server does not answer (yet). */
const getJson = async (url: string): Promise<unknown> => {
  try {
    const res = await fetch(url);
    return res.ok ? await res.json() : undefined;
  } catch {
    return undefined;
  }
};

/** Polls `probe` every 100 ms until it returns a value; fails when the job exits or at `deadline`. */
const pollUntil = async <T>(
  job: LiveChild,
  what: string,
  deadline: number,
  probe: () => Promise<T | undefined>,
): Promise<T> => {
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (!job.running()) {
      throw new BenchFailure(`eddy run exited waiting for ${what}:\n${job.stderr().slice(-1500)}`);
    }
    if (Date.now() >= deadline) {
      throw new BenchFailure(`timed out waiting for ${what}:\n${job.stderr().slice(-1500)}`);
    }
    await sleep(100);
  }
};

interface JobVertex {
  readonly uid: string;
  readonly recordsIn: number;
  readonly subtasks: ReadonlyArray<{ readonly index: number; readonly recordsOut: number }>;
}

/**
 * Waits until every key is in state: each source subtask (one file each) has emitted at least
 * its file's first pass (the `cover` layout's first pass over all users: the file's first
 * lines) and running-sum has taken in at least `keys` records. Returns the time it saw that:
 * a checkpoint triggered later holds every key.
 */
const waitLoaded = (job: LiveChild, api: string, keys: number, deadline: number) => {
  const firstPass = Math.ceil(keys / PAUSE_DEFAULTS.files);
  return pollUntil(job, `${fmtCount(keys)} keys in state`, deadline, async () => {
    const j = (await getJson(api)) as { vertices?: JobVertex[] } | undefined;
    const source = j?.vertices?.find((v) => v.uid === 'events');
    const sum = j?.vertices?.find((v) => v.uid === UID);
    if (!source || !sum || source.subtasks.length !== PAUSE_DEFAULTS.from) return undefined;
    const loaded = source.subtasks.every((s) => s.recordsOut >= firstPass) && sum.recordsIn >= keys;
    return loaded ? Date.now() : undefined;
  });
};

/** Waits for a completed checkpoint triggered after `after` (epoch ms); returns its id. */
const waitCheckpointAfter = (job: LiveChild, api: string, after: number, deadline: number) =>
  pollUntil(job, 'a checkpoint after the state was loaded', deadline, async () => {
    const c = (await getJson(`${api}/checkpoints`)) as
      | { latestCompleted?: { id: number; triggerTime: string } | null }
      | undefined;
    const last = c?.latestCompleted;
    return last && Date.parse(last.triggerTime) > after ? last.id : undefined;
  });

// `eddy rescale`'s stdout and the job's own line (src/cli/control.ts, finishRescale in run.ts).
const RESCALE_OUT =
  /pause (\d+) ms \(new threads started beforehand in (\d+) ms[^)]*\), restored (\d+) key groups, (\d+) bytes read(?: \((\d+) more on first use\))? in (\d+) ms, via (\S+)/;
const RESCALE_LINE =
  /^rescaled \d+ -> \d+: pause (\d+) ms, .*\[stop\+(?:savepoint|checkpoint) (\d+) ms, start\+restore (\d+) ms, (?:to first record (\d+) ms|no record)/m;

/** Bytes the snapshot in `dir` wrote, and the keyed state bytes it refers to. */
const snapshotBytes = async (dir: string) => {
  const m = await loadMetadata(dir);
  let written = 0;
  let state = 0;
  for (const op of m.operators) {
    for (const s of op.subtasks) {
      written += (s.keyed?.bytes ?? 0) + (s.operatorState?.bytes ?? 0);
      if (s.keyed) state += stateBytesOf(s.keyed);
    }
  }
  return { written, state };
};

/**
 * From the job's stderr: the final snapshot's own time (its `completed` line names `via`) and
 * the periodic checkpoints before the stop (median time and bytes): a final snapshot queued
 * behind a periodic checkpoint in flight waits for it.
 */
const snapshotLines = (stderr: string, via: string) => {
  const stopAt = stderr.indexOf('rescaling: stopping');
  let finalSnapshotMs = Number.NaN;
  let queuedBehind = 0;
  const periodic: CheckpointLine[] = [];
  for (const line of stderr.slice(Math.max(0, stopAt)).split('\n')) {
    const c = parseCheckpointLine(line);
    if (!c) continue;
    if (c.dir === via) {
      finalSnapshotMs = c.totalMs ?? Number.NaN;
      break;
    }
    if (c.kind === 'checkpoint') queuedBehind++;
  }
  for (const line of stderr.slice(0, stopAt < 0 ? undefined : stopAt).split('\n')) {
    const c = parseCheckpointLine(line);
    if (c?.kind === 'checkpoint') periodic.push(c);
  }
  return {
    finalSnapshotMs,
    queuedBehind,
    periodicCheckpointMs: median(periodic.map((c) => c.totalMs ?? Number.NaN)),
    periodicCheckpointBytes: median(periodic.map((c) => c.bytes)),
  };
};

/** The digest keyed-sum's output must have: one `{"user","total"}` line per event, in input order per user. */
const expectedDigest = async (dataDir: string, events: number): Promise<DigestValue> => {
  const file = join(dataDir, '_expected.json');
  try {
    const cached = JSON.parse(readFileSync(file, 'utf8')) as DigestValue & { events: number };
    if (cached.events === events) return { lines: cached.lines, hash: cached.hash };
  } catch {}
  const d = new LineDigest();
  const enc = new TextEncoder();
  const names = readdirSync(dataDir).filter((n) => n.endsWith('.jsonl'));
  for (const name of names) {
    // Users are sharded by file: one running sum map per file is enough.
    const sums = new Map<string, number>();
    const lines = createInterface({ input: createReadStream(join(dataDir, name)) });
    for await (const line of lines) {
      if (line === '') continue;
      const e = JSON.parse(line) as { user: string; amount: number };
      const total = (sums.get(e.user) ?? 0) + e.amount;
      sums.set(e.user, total);
      d.update(enc.encode(JSON.stringify({ user: e.user, total }))).endFile();
    }
  }
  const v = d.value();
  if (v.lines !== events) {
    throw new BenchFailure(`${dataDir} holds ${v.lines} events, its manifest says ${events}`);
  }
  writeFileSync(file, `${JSON.stringify({ ...v, events })}\n`);
  return v;
};

const pauseOnce = async (
  dataDir: string,
  keys: number,
  mode: CheckpointMode,
  round: number,
  o: PauseOptions,
): Promise<PauseRun> => {
  const tmp = mkdtempSync(join(tmpdir(), 'eddy-bench-pause-'));
  // Its own registry: `eddy rescale <id>` finds the job there.
  const env = { ...process.env, EDDY_HOME: join(tmp, 'home') };
  const out = join(tmp, 'out');
  const started = performance.now();
  const deadline = Date.now() + o.timeoutMs;
  const job = spawnLive(
    [
      EDDY,
      'run',
      JOB,
      '-p',
      String(PAUSE_DEFAULTS.from),
      '--no-progress',
      '--ui-port',
      '0',
      '--restart-attempts',
      '0',
      '--checkpoint-interval',
      String(o.intervalMs),
      '--checkpoint-mode',
      mode,
      '--state-dir',
      join(tmp, 'state'),
      '--',
      '--input',
      dataDir,
      '--output',
      out,
      ...(o.rate === undefined ? [] : ['--rate', String(o.rate)]),
    ],
    env,
  );
  const killer = setTimeout(job.kill, o.timeoutMs);
  try {
    const id = (await job.waitFor(/^job (\S+) \(/m, 'the job id', deadline))[1]!;
    const url = (await job.waitFor(/dashboard and REST API: (\S+)/, 'the REST API', deadline))[1]!;
    const api = `${url}/api/jobs/${id}`;
    const loadedAt = await waitLoaded(job, api, keys, deadline);
    const checkpointsBefore = await waitCheckpointAfter(job, api, loadedAt, deadline);
    const r = await runWithEnv(
      [EDDY, 'rescale', id, String(PAUSE_DEFAULTS.to)],
      env,
      Math.max(1000, deadline - Date.now()),
    );
    if (r.code !== 0) {
      const short = /job ended before the rescale/.test(r.stderr)
        ? ' (the input ran out first: raise --tail-events)'
        : '';
      throw new BenchFailure(
        `eddy rescale exited ${r.code}${short}: ${r.stderr.trim()}\njob:\n${job.stderr().slice(-1500)}`,
      );
    }
    const rep = RESCALE_OUT.exec(r.stdout);
    if (!rep) throw new BenchFailure(`cannot parse eddy rescale's report: ${r.stdout.trim()}`);
    const via = rep[7]!;
    // Read before the new generation's checkpoints and retention move on.
    const snap = await snapshotBytes(via);
    const wantVia = mode === 'incremental' ? /\/checkpoints\/chk-\d+$/ : /\/rescales\//;
    if (!wantVia.test(via)) {
      throw new BenchFailure(
        `a ${mode} rescale restored from ${via} (expected ${mode === 'incremental' ? 'the final checkpoint' : 'a rescale savepoint'}): is dist/ built from the sources (npm run build)?`,
      );
    }
    const line = RESCALE_LINE.exec(
      (await job.waitFor(RESCALE_LINE, "the job's rescale line", deadline))[0],
    )!;
    const snapshots = snapshotLines(job.stderr(), via);
    const exit = await job.exited;
    if (exit.code !== 0) {
      throw new BenchFailure(
        `eddy run ended with ${exit.code ?? exit.signal} after the rescale:\n${job.stderr().slice(-1500)}`,
      );
    }
    return {
      mode,
      round,
      pauseMs: Number(line[1]),
      stopSnapshotMs: Number(line[2]),
      startRestoreMs: Number(line[3]),
      firstRecordMs: line[4] === undefined ? undefined : Number(line[4]),
      restoreMs: Number(rep[6]),
      prepareMs: Number(rep[2]),
      keyGroups: Number(rep[3]),
      bytesRead: Number(rep[4]),
      bytesDeferred: Number(rep[5] ?? 0),
      snapshotBytesWritten: snap.written,
      snapshotStateBytes: snap.state,
      ...snapshots,
      via,
      checkpointsBefore,
      wallMs: performance.now() - started,
      output: digestDir(out),
    };
  } finally {
    clearTimeout(killer);
    job.kill();
    await job.exited;
    rmSync(tmp, { recursive: true, force: true });
  }
};

const summarizePause = (
  keys: number,
  events: number,
  mode: CheckpointMode,
  runs: PauseRun[],
  failures: string[],
): PauseResult => {
  const med = (f: (r: PauseRun) => number | undefined) =>
    median(runs.map(f).filter((x): x is number => x !== undefined));
  return {
    keys,
    events,
    mode,
    runs,
    failures,
    pauseMs: med((r) => r.pauseMs),
    stopSnapshotMs: med((r) => r.stopSnapshotMs),
    startRestoreMs: med((r) => r.startRestoreMs),
    firstRecordMs: med((r) => r.firstRecordMs),
    finalSnapshotMs: med((r) => r.finalSnapshotMs),
    periodicCheckpointMs: med((r) => r.periodicCheckpointMs),
    snapshotBytesWritten: med((r) => r.snapshotBytesWritten),
    bytesRead: med((r) => r.bytesRead),
    bytesDeferred: med((r) => r.bytesDeferred),
    snapshotStateBytes: med((r) => r.snapshotStateBytes),
  };
};

/** Both modes at one state size, interleaved round by round (the first alternates). */
const measurePause = async (keys: number, o: PauseOptions): Promise<PauseResult[]> => {
  const events = keys + Math.max(keys, o.tailEvents);
  const params: KeyedSumDataParams = {
    events,
    users: keys,
    files: PAUSE_DEFAULTS.files,
    seed: DEFAULTS.seed,
    layout: 'cover',
  };
  const data = ensureKeyedSumData(params, join(DATA_ROOT, `rescale-pause-${keys}-${events}`));
  const expected = await expectedDigest(data.dir, events);
  console.log(
    `data: ${relative(REPO, data.dir)} (${data.cached ? 'cached' : 'generated'}), ${fmtInt(events)} events over ${fmtInt(keys)} keys in ${PAUSE_DEFAULTS.files} files (every key once, then ${fmtInt(events - keys)} more)`,
  );
  const runs: Record<CheckpointMode, PauseRun[]> = { full: [], incremental: [] };
  const failures: Record<CheckpointMode, string[]> = { full: [], incremental: [] };
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 === 0 ? MODES : [...MODES].reverse();
    for (const mode of order) {
      globalThis.gc?.();
      try {
        const run = await pauseOnce(data.dir, keys, mode, r, o);
        if (!sameDigest(run.output, expected)) {
          throw new BenchFailure(
            `output ${run.output.lines} lines ${run.output.hash}, expected ${expected.lines} lines ${expected.hash} (lost or repeated records)`,
          );
        }
        runs[mode].push(run);
        console.log(
          `  round ${r + 1} ${mode.padEnd(11)} pause ${run.pauseMs} ms [stop+snapshot ${run.stopSnapshotMs} (the snapshot itself ${fmtMs(run.finalSnapshotMs)}${run.queuedBehind > 0 ? `, queued behind ${run.queuedBehind} periodic checkpoint(s) in flight` : ''}), start+restore ${run.startRestoreMs}, to first record ${run.firstRecordMs ?? '-'}] periodic checkpoints ${fmtMs(run.periodicCheckpointMs)} ms ${fmtMiB(run.periodicCheckpointBytes)} MiB; snapshot wrote ${fmtMiB(run.snapshotBytesWritten)} MiB, restore read ${fmtMiB(run.bytesRead)} MiB (${fmtMiB(run.bytesDeferred)} MiB on first use) in ${run.restoreMs} ms; output exact; wall ${fmtSec(run.wallMs)} s`,
        );
      } catch (e) {
        if (!(e instanceof BenchFailure)) throw e;
        failures[mode].push(`round ${r + 1}: ${e.message}`);
        console.log(`  round ${r + 1} ${mode} FAILED: ${e.message.split('\n')[0]}`);
      }
    }
  }
  return MODES.map((m) => summarizePause(keys, events, m, runs[m], failures[m]));
};

const printPause = (results: PauseResult[], o: PauseOptions): void => {
  console.log(
    `\npause vs state size — eddy rescale ${PAUSE_DEFAULTS.from} -> ${PAUSE_DEFAULTS.to} of a running keyed-sum, checkpoint interval ${o.intervalMs} ms${o.rate === undefined ? ', input unthrottled' : `, input at ${fmtInt(o.rate)} events/s`}; medians over ${o.rounds} round(s)\n`,
  );
  const rows = results.map((r) => [
    fmtCount(r.keys),
    r.mode,
    r.runs.length === 0 ? 'FAILED' : fmtMs(r.pauseMs),
    fmtMs(r.stopSnapshotMs),
    fmtMs(r.finalSnapshotMs),
    fmtMs(r.startRestoreMs),
    fmtMs(r.firstRecordMs),
    fmtMiB(r.snapshotBytesWritten),
    fmtMiB(r.bytesRead),
    fmtMiB(r.bytesDeferred),
    `${r.runs.length}/${r.runs.length + r.failures.length}`,
    `${r.runs.filter((x) => x.queuedBehind > 0).length}/${r.runs.length}`,
    fmtMs(r.periodicCheckpointMs),
    r.runs.map((x) => x.pauseMs).join(', '),
  ]);
  console.log(
    table(
      [
        'keys',
        'mode',
        'pause ms',
        'stop+snapshot',
        'snapshot',
        'start+restore',
        'to 1st record',
        'snapshot MiB written',
        'restore MiB read',
        'on first use MiB',
        'ok',
        'queued',
        'periodic chk ms',
        'pauses',
      ],
      rows,
    ),
  );
};

const PAUSE_NOTES = `
pause = from stopping the job to its first record at the new parallelism (the rescale report;
the new threads are started before the stop, not counted). stop+snapshot = stop and write the
final snapshot: full mode a savepoint of all state in rescales/, incremental mode the final
checkpoint, which writes only what changed since the previous one. snapshot = the final
snapshot's own time, trigger to completion, from its 'completed' line; it is queued behind a
periodic checkpoint in flight at the stop (queued = runs where it was). start+restore = the new
generation starting and restoring. snapshot MiB written = keyed blocks + operator state the
final snapshot wrote (its metadata); restore MiB read = the report's bytes read (at 2 -> 3 every
key group: in incremental mode whole chains, base + deltas, which the compaction rule keeps
<= 2x the live state); on first use MiB = chains the restore did not read (an incremental
restore of the job's own checkpoint reads each key group's chain at its first record, after
the pause). periodic chk ms = median of the job's checkpoints before the rescale.
The input is unthrottled unless --rate is given: the keys changed per checkpoint interval (so
an incremental snapshot's size) follow the throughput, not the state. Every run must end with
exit 0 and exactly keyed-sum's output (order-independent digest against the running sums
computed here from the input).`;

// ---------------------------------------------------------------------------------------------

const parseCases = (v: string): Array<[number, number]> =>
  v.split(',').map((p) => {
    const m = /^\s*(\d+):(\d+)\s*$/.exec(p);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
      throw new BenchFailure(`--cases must look like 2:3,3:2, got '${v}'`);
    }
    return [Number(m[1]), Number(m[2])];
  });

const parseKeyList = (name: string, v: string): number[] =>
  v.split(',').map((k) => positiveInt(name, k.trim(), 0));

/** The restore strategies side by side, per key count and case (the part before item 6). */
const runStrategies = async (
  keyCounts: readonly number[],
  cases: ReadonlyArray<[number, number]>,
  rounds: number,
  sample: number,
  e2e: boolean,
  timeoutMs: number,
  failures: string[],
): Promise<CaseResult[]> => {
  console.log(
    `\nrestore strategies: cases ${cases.map((c) => c.join('->')).join(', ')}; ${rounds} round(s) in-process; per-key sample ${fmtInt(sample)}; e2e ${e2e ? 'on' : 'off'}`,
  );
  const results: CaseResult[] = [];
  for (const keys of keyCounts) {
    console.log(`\n=== ${fmtCount(keys)} keys ===`);
    try {
      const params: KeyedSumDataParams = {
        events: keys,
        users: keys,
        files: DEFAULTS.files,
        seed: DEFAULTS.seed,
        layout: 'cover',
      };
      const data = ensureKeyedSumData(params);
      console.log(
        `data: ${relative(REPO, data.dir)} (${data.cached ? 'cached' : 'generated'}), 1 event per key`,
      );
      const perKey: CaseResult[] = [];
      for (const [from, to] of cases) {
        const c = await ensureCheckpoint(keys, from, data.dir, timeoutMs);
        console.log(
          `  ${from}->${to}: checkpoint ${relative(REPO, c.dir)}, ${fmtMiB(keyedStateBytes(c.entry))} MiB keyed state, maxParallelism ${c.entry.maxParallelism}`,
        );
        const r = await measureCase(c, keys, to, rounds, sample, e2e, timeoutMs);
        perKey.push(r);
        results.push(r);
        console.log(
          `    eddy par ${fmtMs(r.strategies.eddy.parMs)} ms (${r.eddyVsFloorPar.toFixed(2)}x floor, ${r.eddyVsFloorRestorePar.toFixed(2)}x floor+restore), read-all ${fmtMs(r.strategies['read-all'].parMs)} ms, per-key ${fmtMs(r.strategies['per-key'].parMs)} ms, floor ${fmtMs(r.strategies.floor.parMs)} ms, floor+restore ${fmtMs(r.strategies['floor+restore'].parMs)} ms` +
            (r.endToEnd
              ? `; e2e engine restore ${fmtMs(r.endToEnd.engineRestoreMs)} ms, wall ${fmtMs(r.endToEnd.wallMs)} ms${r.endToEnd.failure ? ` FAILED ${r.endToEnd.failure}` : ''}`
              : ''),
        );
      }
      perKeyIndexes.clear();
      printKeyCount(keys, perKey);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (!(e instanceof BenchFailure) && !(e instanceof RangeError) && !/memory/i.test(msg))
        throw e;
      failures.push(`${fmtCount(keys)} keys: ${msg}`);
      console.log(`  ${fmtCount(keys)} keys FAILED: ${msg}`);
      perKeyIndexes.clear();
    }
  }
  console.log(NOTES);
  return results;
};

/** Pause vs state size, per key count: both modes interleaved. */
const runPauseVsState = async (
  stateKeys: readonly number[],
  o: PauseOptions,
  failures: string[],
): Promise<PauseResult[]> => {
  console.log(
    `\npause vs state size: keys ${stateKeys.map(fmtCount).join(', ')}; modes ${MODES.join(', ')} interleaved; ${o.rounds} round(s); checkpoint interval ${o.intervalMs} ms`,
  );
  const results: PauseResult[] = [];
  for (const keys of stateKeys) {
    console.log(`\n=== pause vs state: ${fmtCount(keys)} keys ===`);
    try {
      const rs = await measurePause(keys, o);
      results.push(...rs);
      for (const r of rs) {
        for (const f of r.failures) failures.push(`pause ${fmtCount(keys)} ${r.mode} ${f}`);
      }
      const digests = new Set(rs.flatMap((r) => r.runs.map((x) => x.output.hash)));
      if (digests.size > 1) failures.push(`pause ${fmtCount(keys)}: outputs differ between runs`);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (!(e instanceof BenchFailure) && !(e instanceof RangeError) && !/memory/i.test(msg))
        throw e;
      failures.push(`pause ${fmtCount(keys)} keys: ${msg}`);
      console.log(`  ${fmtCount(keys)} keys FAILED: ${msg}`);
    }
  }
  if (results.length > 0) printPause(results, o);
  console.log(PAUSE_NOTES);
  return results;
};

const benchmark = async (argv: string[]): Promise<number> => {
  const values = parseBenchArgs(
    argv,
    {
      keys: { type: 'string' },
      cases: { type: 'string' },
      rounds: { type: 'string' },
      sample: { type: 'string' },
      timeout: { type: 'string' },
      'no-e2e': { type: 'boolean' },
      quick: { type: 'boolean' },
      'pause-vs-state': { type: 'boolean' },
      'no-pause-vs-state': { type: 'boolean' },
      'state-keys': { type: 'string' },
      'checkpoint-interval': { type: 'string' },
      'tail-events': { type: 'string' },
      rate: { type: 'string' },
    },
    HELP,
  );
  if (typeof values === 'number') return values;
  const str = (k: string) => values[k] as string | undefined;
  const quick = values.quick === true;
  if (values['pause-vs-state'] === true && values['no-pause-vs-state'] === true) {
    throw new BenchFailure('--pause-vs-state and --no-pause-vs-state exclude each other');
  }
  const strategiesOn = values['pause-vs-state'] !== true;
  const pauseOn = values['no-pause-vs-state'] !== true;
  const keyCounts =
    str('keys') === undefined
      ? quick
        ? QUICK.keys
        : DEFAULTS.keys
      : parseKeyList('keys', str('keys')!);
  const stateKeys =
    str('state-keys') === undefined
      ? quick
        ? QUICK.keys
        : PAUSE_DEFAULTS.stateKeys
      : parseKeyList('state-keys', str('state-keys')!);
  const cases = str('cases') === undefined ? DEFAULTS.cases : parseCases(str('cases')!);
  const rounds = positiveInt('rounds', str('rounds'), quick ? QUICK.rounds : DEFAULTS.rounds);
  const sample = positiveInt('sample', str('sample'), DEFAULTS.sample);
  const timeoutMs = positiveInt('timeout', str('timeout'), DEFAULTS.timeoutSec) * 1000;
  const e2e = values['no-e2e'] !== true;
  const pauseOptions: PauseOptions = {
    rounds,
    intervalMs: positiveInt(
      'checkpoint-interval',
      str('checkpoint-interval'),
      PAUSE_DEFAULTS.intervalMs,
    ),
    tailEvents: positiveInt('tail-events', str('tail-events'), PAUSE_DEFAULTS.tailEvents),
    rate: str('rate') === undefined ? undefined : positiveInt('rate', str('rate'), 0),
    timeoutMs,
  };
  const date = new Date();
  const host = machine();

  console.log(`rescale benchmark — ${date.toISOString()}`);
  console.log(`machine: ${describeMachine(host)}`);
  const load = loadavg();
  console.log(
    `load average at start: ${load.map((l) => l.toFixed(2)).join(' ')}` +
      (load[0]! > 0.5 ? ' (the machine is busy: numbers will be noisy)' : ''),
  );
  if (pauseOn && rounds < 2) console.log('warning: 1 round: the pause medians are single runs');

  const failures: string[] = [];
  const results = strategiesOn
    ? await runStrategies(keyCounts, cases, rounds, sample, e2e, timeoutMs, failures)
    : [];
  const pause = pauseOn ? await runPauseVsState(stateKeys, pauseOptions, failures) : [];
  if (failures.length > 0)
    console.log(`\nFAILURES:\n${failures.map((f) => `  ${f.split('\n')[0]}`).join('\n')}`);

  const outDir = join(DATA_ROOT, 'results');
  mkdirSync(outDir, { recursive: true });
  const stamp = date.toISOString().replace(/[:.]/g, '-');
  const jsonFile = join(outDir, `rescale-${stamp}.json`);
  const pauseConfig = pauseOn
    ? {
        stateKeys,
        checkpointIntervalMs: pauseOptions.intervalMs,
        tailEvents: pauseOptions.tailEvents,
        rate: pauseOptions.rate ?? null,
        from: PAUSE_DEFAULTS.from,
        to: PAUSE_DEFAULTS.to,
      }
    : null;
  writeFileSync(
    jsonFile,
    `${JSON.stringify({ benchmark: 'rescale', date: date.toISOString(), machine: host, loadAverageAtStart: load, loadAverageAtEnd: loadavg(), rounds, sample, cases: results, pauseVsState: pause, pauseConfig, failures }, null, 2)}\n`,
  );
  console.log(`\nresults: ${relative(REPO, jsonFile)}`);
  if (results.length > 0) {
    const svgFile = join(outDir, `rescale-${stamp}.svg`);
    writeFileSync(
      svgFile,
      renderRescaleChart(results, { date: date.toISOString(), machine: describeMachine(host) }),
    );
    console.log(`chart:   ${relative(REPO, svgFile)}`);
  }
  return failures.length > 0 ? 1 : 0;
};

export const main = benchMain('rescale', benchmark);
