/**
 * A small log-structured merge store (docs/ARCHITECTURE.md, "State backends"): the disk
 * backend's ordered key-value store. Single writer, synchronous, local only (durability comes
 * from checkpoints: nothing here survives its process).
 *
 * - Writes go to the memtable ({@link Memtable}); {@link commit} turns a full one into a run
 *   file, written front to back, so a random update costs a sequential write, not a page
 *   rewrite (why not a B-tree: the measurements in docs/BENCHMARKS.md, "state-backends").
 * - Runs are merged size-tiered: when `fanIn` runs have the same size class, they become one.
 *   A merge that reaches the oldest run drops deletions. Merges run in {@link commit}, on the
 *   job's thread (a stall the size of the merge: bounded by the largest tier).
 * - Reads look at the memtables, then the runs, newest first; each run answers most absent
 *   keys from its Bloom filter, in memory, and a present key with one `pread`.
 * - A snapshot freezes the memtable (later writes go to a new one) and holds the runs it saw:
 *   a merge replaces runs in the store but a held run stays readable (its file is deleted
 *   when its last holder lets go). So a checkpoint reads a consistent state while the job
 *   goes on writing, and nothing is copied to take it.
 * - Memory: memtables (bounded by `memtableEntries` and `maxMemtables`), and per run its
 *   filter (`bitsPerKey` bits per entry) and block index (one key per `blockBytes`). Data
 *   read from runs sits in the kernel's page cache, not in the process's RSS.
 *
 * Hazard: buffers handed out by {@link getFast} and {@link range} are views of reused memory,
 * valid until the next read; and a read without a snapshot must be finished before the next
 * write.
 */
import { join } from 'node:path';
import { hashKey } from './bloom.js';
import { compareBytes } from './bytes.js';
import { lowerBound, Memtable, type MemValue } from './memtable.js';
import { ABSENT, MAX_KEY, type Run, RunWriter } from './run.js';

export interface LsmOptions {
  /** Existing directory for the run files. */
  readonly dir: string;
  /** Entries a memtable takes before it becomes a run (default 262,144). */
  readonly memtableEntries?: number | undefined;
  /** Frozen memtables kept in memory before they are written as one run (default 4). */
  readonly maxMemtables?: number | undefined;
  /** Runs of one size class that are merged into one (default 4). */
  readonly fanIn?: number | undefined;
  /** Entries of the smallest size class of runs (default 16,384: a small flush). */
  readonly tierBase?: number | undefined;
  /**
   * A merge of up to this many entries runs at once; a larger one runs a slice at each write
   * batch, so the subtask never stalls for a whole large merge (default 1,048,576).
   */
  readonly syncMergeEntries?: number | undefined;
  /** Target size of a data block (default 4096). */
  readonly blockBytes?: number | undefined;
  /** Bloom filter bits per entry (default 10: about 1% false positives). */
  readonly bitsPerKey?: number | undefined;
}

export interface LsmStats {
  readonly runs: number;
  readonly runEntries: number;
  readonly runBytes: number;
  readonly memtableEntries: number;
  /** Index and filter memory of the runs (approximate). */
  readonly indexBytes: number;
}

/** A consistent read view: see the file's comment. Release it when done. */
export class LsmSnapshot {
  released = false;

  constructor(
    readonly mems: readonly Memtable[],
    readonly runs: readonly Run[],
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    for (const r of this.runs) r.release();
  }
}

/** Where {@link LsmStore.ingest} takes entries: keys as latin1 strings, ascending. */
export interface IngestSink {
  /** An entry; `null` deletes the key. */
  add(key: string, value: Uint8Array | null): void;
}

/**
 * A scan's position: after {@link next} returns true, the entry is `buf` at `kOff` (`kLen`
 * bytes) and `vOff` (`vLen` bytes), valid until the next call. Deletions are skipped.
 */
export class ScanCursor {
  buf: Buffer = EMPTY;
  kOff = 0;
  kLen = 0;
  vOff = 0;
  vLen = 0;

  constructor(
    private readonly merged: MergeCursor,
    private readonly end: Buffer | undefined,
    private readonly check: (() => void) | undefined,
  ) {}

  next(): boolean {
    const end = this.end;
    for (;;) {
      this.merged.next();
      const c = this.merged.current;
      if (c === undefined) return false;
      const buf = c.buf!;
      if (
        end !== undefined &&
        compareBytes(buf, c.kOff, c.kOff + c.kLen, end, 0, end.length) >= 0
      ) {
        return false;
      }
      if (c.vLen < 0) continue;
      this.check?.();
      this.buf = buf;
      this.kOff = c.kOff;
      this.kLen = c.kLen;
      this.vOff = c.vOff;
      this.vLen = c.vLen;
      return true;
    }
  }
}

const EMPTY = Buffer.alloc(0);

/** Merge work per entry written: enough for the merges a write causes to keep pace. */
const PACE = 4;

/** A merge of `inputs` (contiguous runs) into `writer`, done in steps. */
interface PacedMerge {
  readonly inputs: readonly Run[];
  readonly cursor: MergeCursor;
  readonly writer: RunWriter;
  readonly dropDeletions: boolean;
}

export interface LsmEntry {
  readonly key: Buffer;
  readonly value: Buffer;
}

export class LsmStore {
  private mem = new Memtable();
  /** Frozen memtables, newest first. */
  private immutables: Memtable[] = [];
  /** Runs, newest first. */
  private runs: Run[] = [];
  private seq = 0;
  private closed = false;
  private readonly memtableEntries: number;
  private readonly maxMemtables: number;
  private readonly fanIn: number;
  private readonly blockBytes: number;
  private readonly bitsPerKey: number;
  private readonly tierBase: number;
  private readonly syncMergeEntries: number;
  /** A run being appended to by a bulk load (see {@link ingest}): not readable until sealed. */
  private appending: RunWriter | undefined;
  /** The large merge in progress, if any (see {@link LsmOptions.syncMergeEntries}). */
  private paced: PacedMerge | undefined;

  constructor(private readonly options: LsmOptions) {
    this.memtableEntries = options.memtableEntries ?? 262_144;
    this.maxMemtables = options.maxMemtables ?? 4;
    this.fanIn = Math.max(2, options.fanIn ?? 4);
    this.blockBytes = options.blockBytes ?? 4096;
    this.bitsPerKey = options.bitsPerKey ?? 10;
    this.tierBase = Math.max(1, options.tierBase ?? 16_384);
    this.syncMergeEntries = options.syncMergeEntries ?? 1_048_576;
  }

  /** The value of `key` (a view: see the hazard), or undefined. */
  getFast(key: Uint8Array, snapshot?: LsmSnapshot): Buffer | undefined {
    if (this.appending !== undefined) this.seal();
    const bytes = Buffer.isBuffer(key) ? key : Buffer.from(key.buffer, key.byteOffset, key.length);
    const str = bytes.toString('latin1', 0, bytes.length);
    let v: MemValue | undefined;
    if (snapshot === undefined) {
      // Hazard: `null` is a deletion, not an absence: no `??` here.
      v = this.mem.get(str);
      if (v === undefined) v = this.fromMems(this.immutables, str);
    } else {
      v = this.fromMems(this.live(snapshot).mems, str);
    }
    if (v !== undefined) return v === null ? undefined : Buffer.from(v, 'latin1');
    const runs = snapshot === undefined ? this.runs : snapshot.runs;
    if (runs.length === 0) return undefined;
    const hash = hashKey(str);
    for (const run of runs) {
      const r = run.get(str, bytes, hash);
      if (r !== ABSENT) return r ?? undefined;
    }
    return undefined;
  }

  /** @throws RangeError for a key over {@link MAX_KEY} bytes (at the call, not at a commit). */
  put(key: Uint8Array, value: Uint8Array): void {
    if (this.appending !== undefined) this.seal();
    checkKey(key);
    this.mem.set(latin1(key), latin1(value));
  }

  /** Deletes `key` (a no-op if it has no entry). */
  del(key: Uint8Array): void {
    if (this.appending !== undefined) this.seal();
    checkKey(key);
    const str = latin1(key);
    if (this.immutables.length === 0 && this.runs.length === 0) {
      // Nothing older to hide: no tombstone needed.
      if (this.mem.get(str) !== undefined) this.mem.set(str, null);
      return;
    }
    this.mem.set(str, null);
  }

  /**
   * Ends a batch of writes: a full memtable is frozen, frozen memtables over their bound are
   * written as a run, and runs are merged as needed. Throws if a file write fails.
   */
  commit(): void {
    // An open appended run stays open: the memtable is empty while it is (writes close it).
    if (this.mem.size >= this.memtableEntries) this.freeze();
    let frozen = 0;
    for (const m of this.immutables) frozen += m.size;
    if (
      this.immutables.length > 0 &&
      (frozen >= this.memtableEntries || this.immutables.length >= this.maxMemtables)
    ) {
      this.compact(PACE * this.writeMemtables());
    }
  }

  /**
   * Writes a batch as a new run, the newest, past the memtable (which is written out first:
   * it is older). `fill` hands each entry to the sink in strictly ascending key order; value
   * bytes are copied at once, so they may be a reused buffer. Throws if a file write fails
   * (or what `fill` throws; the batch is then not written).
   *
   * `append` (a bulk load, key ranges ascending: a restore): the run stays open, and the next
   * ingest whose keys all come after it (`append.first` is its smallest key) continues it, so
   * a restore of many key groups makes one run and no merges. Any other call closes it first.
   * Hazard: a failure while it is open loses the whole open run (the caller discards the
   * store: its errors restart the job from a checkpoint).
   */
  ingest(expected: number, fill: (sink: IngestSink) => void, append?: { first: string }): void {
    if (expected === 0) return;
    const open = this.appending;
    if (open !== undefined && append !== undefined && !(append.first <= (open.lastAdded ?? ''))) {
      try {
        fill(open);
      } catch (error) {
        this.appending = undefined;
        open.abandon();
        throw error;
      }
      return;
    }
    this.seal();
    if (this.mem.size > 0) this.freeze();
    if (this.immutables.length > 0) this.writeMemtables();
    // An appended run's size is not known: its filter is sized when it is sealed.
    const writer = this.newWriter(append === undefined ? expected : undefined);
    try {
      fill(writer);
    } catch (error) {
      writer.abandon();
      throw error;
    }
    if (append !== undefined) {
      this.appending = writer;
      return;
    }
    this.install(writer);
  }

  /** A consistent view of everything written so far (see the file's comment). */
  snapshot(): LsmSnapshot {
    if (this.appending !== undefined) this.seal();
    if (this.mem.size > 0) this.freeze();
    for (const r of this.runs) r.retain();
    return new LsmSnapshot(this.immutables.slice(), this.runs.slice());
  }

  /** Entries with `start` ≤ key < `end` (end undefined: to the last), ascending, no deletions. */
  *range(
    start: Uint8Array,
    end: Uint8Array | undefined,
    snapshot?: LsmSnapshot,
  ): Generator<LsmEntry> {
    const sc = this.scan(start, end, snapshot);
    while (sc.next()) {
      const { buf, kOff, vOff } = sc;
      yield { key: buf.subarray(kOff, kOff + sc.kLen), value: buf.subarray(vOff, vOff + sc.vLen) };
    }
  }

  /**
   * {@link range} without an object per entry: a cursor whose {@link ScanCursor.next} moves to
   * the next live entry and exposes it by offsets (the hot path of checkpoints and scans).
   */
  scan(start: Uint8Array, end: Uint8Array | undefined, snapshot?: LsmSnapshot): ScanCursor {
    if (this.appending !== undefined) this.seal();
    const check = snapshot === undefined ? undefined : () => this.live(snapshot);
    return new ScanCursor(
      this.merged(latin1(start), snapshot),
      end === undefined ? undefined : Buffer.from(end),
      check,
    );
  }

  /** Whether some key k has `start` ≤ k < `end`. */
  any(start: Uint8Array, end: Uint8Array | undefined, snapshot?: LsmSnapshot): boolean {
    for (const _ of this.range(start, end, snapshot)) return true;
    return false;
  }

  /**
   * An upper bound of the largest key: the largest key written and not yet merged away,
   * deletions included (undefined: the store holds no key: none written, or all deleted and
   * merged away).
   */
  lastKey(): Buffer | undefined {
    let last = this.appending?.lastAdded;
    for (const m of [this.mem, ...this.immutables]) {
      const keys = m.keys();
      const k = keys[keys.length - 1];
      if (k !== undefined && (last === undefined || k > last)) last = k;
    }
    for (const r of this.runs) {
      const k = r.lastKey;
      if (k !== undefined && (last === undefined || k > last)) last = k;
    }
    return last === undefined ? undefined : Buffer.from(last, 'latin1');
  }

  /** Run files being written and not yet runs: a paced merge's, an open appended run (tests). */
  get filesInProgress(): number {
    return (this.paced === undefined ? 0 : 1) + (this.appending === undefined ? 0 : 1);
  }

  /** Whether a large merge is in progress (tests). */
  get merging(): boolean {
    return this.paced !== undefined;
  }

  stats(): LsmStats {
    if (this.appending !== undefined) this.seal();
    let runEntries = 0;
    let runBytes = 0;
    let indexBytes = 0;
    for (const r of this.runs) {
      runEntries += r.entries;
      runBytes += r.bytes;
      indexBytes += r.memoryBytes;
    }
    let memtableEntries = this.mem.size;
    for (const m of this.immutables) memtableEntries += m.size;
    return { runs: this.runs.length, runEntries, runBytes, memtableEntries, indexBytes };
  }

  /** Lets go of every run (files of runs no snapshot holds are deleted). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.appending?.abandon();
    this.appending = undefined;
    this.paced?.writer.abandon();
    this.paced = undefined;
    for (const r of this.runs) r.release();
    this.runs = [];
    this.immutables = [];
    this.mem = new Memtable();
  }

  // ---- internal --------------------------------------------------------------------------

  private live(snapshot: LsmSnapshot): LsmSnapshot {
    if (snapshot.released) throw new Error('read of a released snapshot');
    return snapshot;
  }

  private fromMems(mems: readonly Memtable[], key: string): MemValue | undefined {
    for (const m of mems) {
      const v = m.get(key);
      if (v !== undefined) return v;
    }
    return undefined;
  }

  private freeze(): void {
    this.mem.frozen = true;
    this.immutables.unshift(this.mem);
    this.mem = new Memtable();
  }

  /** Writes the frozen memtables as one run (newest value per key wins); returns its entries. */
  private writeMemtables(): number {
    const mems = this.immutables;
    let total = 0;
    for (const m of mems) total += m.size;
    const dropDeletions = this.runs.length === 0;
    const writer = this.newWriter(total);
    try {
      const cursors = mems.map((m) => ({ keys: m.keys(), at: 0, m }));
      for (;;) {
        let min: string | undefined;
        for (const c of cursors) {
          const k = c.keys[c.at];
          if (k !== undefined && (min === undefined || k < min)) min = k;
        }
        if (min === undefined) break;
        let value: MemValue | undefined;
        for (const c of cursors) {
          if (c.keys[c.at] !== min) continue;
          if (value === undefined) value = c.m.get(min)!;
          c.at++;
        }
        if (value === null && dropDeletions) continue;
        writer.add(min, value!);
      }
    } catch (error) {
      writer.abandon();
      throw error;
    }
    const run = writer.finish();
    this.immutables = [];
    // Every entry a deletion of nothing: no run (its empty file goes with it).
    if (run.entries === 0) run.release();
    else this.runs.unshift(run);
    return run.entries;
  }

  /** Closes the open appended run (see {@link ingest}), if any, and installs it. */
  private seal(): void {
    const writer = this.appending;
    if (writer === undefined) return;
    this.appending = undefined;
    this.install(writer);
  }

  /** Finishes `writer` as the newest run (none if empty) and merges as needed. */
  private install(writer: RunWriter): void {
    const run = writer.finish();
    if (run.entries === 0) {
      run.release();
      return;
    }
    this.runs.unshift(run);
    this.compact(PACE * run.entries);
  }

  /**
   * Merges runs of one size class while some class has `fanIn` of them: small merges at once,
   * a large one a slice at a time (`budget` entries now, the rest at later calls), one large
   * merge at a time. While it runs, only runs newer than its inputs are merged.
   */
  private compact(budget: number): void {
    for (;;) {
      const limit =
        this.paced === undefined ? this.runs.length : this.runs.indexOf(this.paced.inputs[0]!);
      const seg = this.pickMerge(limit);
      if (seg === undefined) break;
      let total = 0;
      for (let i = seg[0]; i < seg[1]; i++) total += this.runs[i]!.entries;
      if (total <= this.syncMergeEntries) {
        this.mergeNow(seg[0], seg[1]);
        continue;
      }
      if (this.paced !== undefined) break;
      this.paced = this.startMerge(seg[0], seg[1], total);
      break;
    }
    if (this.paced !== undefined && this.stepMerge(this.paced, Math.max(budget, this.tierBase))) {
      this.paced = undefined;
      this.compact(0);
    }
  }

  /** The runs [from, to) to merge among the newest `limit`: the smallest class with `fanIn`. */
  private pickMerge(limit: number): [number, number] | undefined {
    const tiers = this.runs.slice(0, limit).map((r) => this.tier(r));
    const count = new Map<number, number>();
    for (const t of tiers) count.set(t, (count.get(t) ?? 0) + 1);
    let pick: number | undefined;
    for (const [t, n] of count) if (n >= this.fanIn && (pick === undefined || t < pick)) pick = t;
    if (pick === undefined) return undefined;
    return [tiers.indexOf(pick), tiers.lastIndexOf(pick) + 1];
  }

  /** A run's size class: runs of up to `tierBase` entries are class 0, then ×`fanIn` each. */
  private tier(run: Run): number {
    const ratio = Math.max(1, run.entries / this.tierBase);
    return Math.floor(Math.log(ratio) / Math.log(this.fanIn) + 1e-9);
  }

  /** Replaces runs [from, to) (contiguous in age) by one, now. */
  private mergeNow(from: number, to: number): void {
    let total = 0;
    for (let i = from; i < to; i++) total += this.runs[i]!.entries;
    const merge = this.startMerge(from, to, total);
    this.stepMerge(merge, Number.POSITIVE_INFINITY);
  }

  private startMerge(from: number, to: number, total: number): PacedMerge {
    const inputs = this.runs.slice(from, to);
    return {
      inputs,
      cursor: new MergeCursor(inputs.map((r) => r.cursor(undefined))),
      writer: this.newWriter(total),
      // Nothing older than the oldest run: deletions have nothing left to hide.
      dropDeletions: to === this.runs.length,
    };
  }

  /**
   * Copies up to `budget` entries of `merge`; at its end, puts its run in its inputs' place
   * (they are still contiguous: only newer runs came or merged since) and returns true.
   */
  private stepMerge(merge: PacedMerge, budget: number): boolean {
    const { cursor, writer } = merge;
    try {
      for (let n = 0; n < budget; n++) {
        cursor.next();
        const c = cursor.current;
        if (c === undefined) {
          const run = writer.finish();
          const at = this.runs.indexOf(merge.inputs[0]!);
          // Merged into nothing (deletions met what they deleted): the inputs just go.
          if (run.entries === 0) {
            run.release();
            this.runs.splice(at, merge.inputs.length);
          } else this.runs.splice(at, merge.inputs.length, run);
          for (const r of merge.inputs) r.release();
          return true;
        }
        if (c.vLen < 0 && merge.dropDeletions) continue;
        writer.addRaw(c.buf!, c.kOff, c.kLen, c.vOff, c.vLen);
      }
    } catch (error) {
      writer.abandon();
      if (this.paced === merge) this.paced = undefined;
      throw error;
    }
    return false;
  }

  private newWriter(expected: number | undefined): RunWriter {
    const path = join(this.options.dir, `run-${String(++this.seq).padStart(8, '0')}.dat`);
    return new RunWriter(path, expected, this.blockBytes, this.bitsPerKey);
  }

  private merged(start: string, snapshot: LsmSnapshot | undefined): MergeCursor {
    const mems = snapshot === undefined ? [this.mem, ...this.immutables] : snapshot.mems;
    const runs = snapshot === undefined ? this.runs : this.live(snapshot).runs;
    const cursors: Cursor[] = [];
    for (const m of mems) if (m.size > 0) cursors.push(new MemCursor(m, start));
    for (const r of runs) cursors.push(r.cursor(start));
    return new MergeCursor(cursors);
  }
}

const checkKey = (key: Uint8Array): void => {
  if (key.length > MAX_KEY) {
    throw new RangeError(
      `a key of ${key.length} bytes: the store holds keys of up to ${MAX_KEY} bytes`,
    );
  }
};

const latin1 = (bytes: Uint8Array): string =>
  Buffer.isBuffer(bytes)
    ? bytes.toString('latin1', 0, bytes.length)
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1', 0, bytes.length);

/**
 * A position in sorted entries: the current one is `buf` at `kOff` (`kLen` bytes) and `vOff`
 * (`vLen` bytes, -1: a deletion); `buf` is undefined once past the end.
 */
interface Cursor {
  readonly buf: Buffer | undefined;
  readonly kOff: number;
  readonly kLen: number;
  readonly vOff: number;
  readonly vLen: number;
  next(): void;
}

class MemCursor implements Cursor {
  buf: Buffer | undefined;
  readonly kOff = 0;
  kLen = 0;
  vOff = 0;
  vLen = 0;
  private readonly keys: readonly string[];
  private at: number;

  constructor(
    private readonly m: Memtable,
    start: string,
  ) {
    this.keys = m.keys();
    this.at = lowerBound(this.keys, start);
    this.load();
  }

  next(): void {
    this.at++;
    this.load();
  }

  private load(): void {
    const k = this.keys[this.at];
    if (k === undefined) {
      this.buf = undefined;
      return;
    }
    const v = this.m.get(k)!;
    // One buffer per entry (key, then value): it stays valid while a caller holds it.
    const buf = Buffer.allocUnsafe(k.length + (v === null ? 0 : v.length));
    buf.write(k, 0, 'latin1');
    if (v !== null) buf.write(v, k.length, 'latin1');
    this.buf = buf;
    this.kLen = k.length;
    this.vOff = k.length;
    this.vLen = v === null ? -1 : v.length;
  }
}

/** Compares the current keys of two cursors (both not past the end). */
const compareCurrent = (a: Cursor, b: Cursor): number =>
  compareBytes(a.buf!, a.kOff, a.kOff + a.kLen, b.buf!, b.kOff, b.kOff + b.kLen);

/**
 * The union of cursors (newest first): each key once, with the newest cursor's entry as
 * `current`. Starts before the first entry: call {@link next} first. Sources tied with the
 * winner advance at the next step, so the winner's entry stays valid until then.
 */
class MergeCursor {
  current: Cursor | undefined;
  /** Cursors at the current key: advanced at the next step (`advanceN` of them). */
  private readonly advance: Cursor[];
  private advanceN = 0;

  constructor(private readonly cursors: readonly Cursor[]) {
    this.advance = new Array<Cursor>(cursors.length);
  }

  next(): void {
    const adv = this.advance;
    for (let i = 0; i < this.advanceN; i++) adv[i]!.next();
    let n = 0;
    let min: Cursor | undefined;
    for (const c of this.cursors) {
      if (c.buf === undefined) continue;
      const cmp = min === undefined ? -1 : compareCurrent(c, min);
      if (cmp < 0) {
        min = c;
        n = 0;
        adv[n++] = c;
      } else if (cmp === 0) {
        adv[n++] = c;
      }
    }
    this.advanceN = n;
    this.current = min;
  }
}
