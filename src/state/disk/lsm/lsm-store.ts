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
import { lowerBound, Memtable, type MemValue } from './memtable.js';
import { ABSENT, type Run, RunWriter } from './run.js';

export interface LsmOptions {
  /** Existing directory for the run files. */
  readonly dir: string;
  /** Entries a memtable takes before it becomes a run (default 262,144). */
  readonly memtableEntries?: number | undefined;
  /** Frozen memtables kept in memory before they are written as one run (default 4). */
  readonly maxMemtables?: number | undefined;
  /** Runs of one size class that are merged into one (default 4). */
  readonly fanIn?: number | undefined;
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

  constructor(private readonly options: LsmOptions) {
    this.memtableEntries = options.memtableEntries ?? 262_144;
    this.maxMemtables = options.maxMemtables ?? 4;
    this.fanIn = Math.max(2, options.fanIn ?? 4);
    this.blockBytes = options.blockBytes ?? 4096;
    this.bitsPerKey = options.bitsPerKey ?? 10;
  }

  /** The value of `key` (a view: see the hazard), or undefined. */
  getFast(key: Uint8Array, snapshot?: LsmSnapshot): Buffer | undefined {
    const bytes = Buffer.isBuffer(key) ? key : Buffer.from(key.buffer, key.byteOffset, key.length);
    const str = bytes.toString('latin1', 0, bytes.length);
    const mems = snapshot === undefined ? undefined : this.live(snapshot).mems;
    if (mems === undefined) {
      // Not `??`: a deletion (null) in the live memtable must hide older values.
      const own = this.mem.get(str);
      const v = own !== undefined ? own : this.fromMems(this.immutables, str);
      if (v !== undefined) return v === null ? undefined : Buffer.from(v, 'latin1');
    } else {
      const v = this.fromMems(mems, str);
      if (v !== undefined) return v === null ? undefined : Buffer.from(v, 'latin1');
    }
    const runs = snapshot === undefined ? this.runs : snapshot.runs;
    if (runs.length === 0) return undefined;
    const hash = hashKey(str);
    for (const run of runs) {
      const r = run.get(str, bytes, hash);
      if (r !== ABSENT) return r ?? undefined;
    }
    return undefined;
  }

  put(key: Uint8Array, value: Uint8Array): void {
    this.mem.set(latin1(key), latin1(value));
  }

  /** Deletes `key` (a no-op if it has no entry). */
  del(key: Uint8Array): void {
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
    if (this.mem.size >= this.memtableEntries) this.freeze();
    let frozen = 0;
    for (const m of this.immutables) frozen += m.size;
    if (
      this.immutables.length > 0 &&
      (frozen >= this.memtableEntries || this.immutables.length >= this.maxMemtables)
    ) {
      this.writeMemtables();
      this.compact();
    }
  }

  /** A consistent view of everything written so far (see the file's comment). */
  snapshot(): LsmSnapshot {
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
    const s = latin1(start);
    const e = end === undefined ? undefined : Buffer.from(end);
    const merged = this.merged(s, snapshot);
    for (;;) {
      merged.next();
      const key = merged.key;
      if (key === undefined || (e !== undefined && key.compare(e) >= 0)) return;
      if (merged.value === null) continue;
      yield { key, value: merged.value };
      if (snapshot !== undefined) this.live(snapshot);
    }
  }

  /** Whether some key k has `start` ≤ k < `end`. */
  any(start: Uint8Array, end: Uint8Array | undefined, snapshot?: LsmSnapshot): boolean {
    for (const _ of this.range(start, end, snapshot)) return true;
    return false;
  }

  /**
   * An upper bound of the largest key: the largest key written and not yet merged away,
   * deletions included (undefined: the store has never held a key).
   */
  lastKey(): Buffer | undefined {
    let last: string | undefined;
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

  stats(): LsmStats {
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

  /** Writes the frozen memtables as one run (newest value per key wins). */
  private writeMemtables(): void {
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
    this.runs.unshift(writer.finish());
    this.immutables = [];
  }

  /** Merges runs of one size class while some class has `fanIn` of them. */
  private compact(): void {
    for (;;) {
      const tiers = this.runs.map((r) => this.tier(r));
      let pick = -1;
      for (let t = 0; t <= Math.max(0, ...tiers); t++) {
        if (tiers.filter((x) => x === t).length >= this.fanIn) {
          pick = t;
          break;
        }
      }
      if (pick < 0) return;
      const from = tiers.indexOf(pick);
      const to = tiers.lastIndexOf(pick) + 1;
      this.mergeRuns(from, to);
    }
  }

  private tier(run: Run): number {
    const ratio = Math.max(1, run.entries / this.memtableEntries);
    return Math.floor(Math.log(ratio) / Math.log(this.fanIn) + 1e-9);
  }

  /** Replaces runs [from, to) (contiguous in age) by one. */
  private mergeRuns(from: number, to: number): void {
    const inputs = this.runs.slice(from, to);
    const dropDeletions = to === this.runs.length;
    let total = 0;
    for (const r of inputs) total += r.entries;
    const writer = this.newWriter(total);
    try {
      const merged = new MergeCursor(inputs.map((r) => r.cursor(undefined)));
      for (;;) {
        merged.next();
        if (merged.key === undefined) break;
        if (merged.value === null && dropDeletions) continue;
        writer.addBytes(merged.key, merged.value);
      }
    } catch (error) {
      writer.abandon();
      throw error;
    }
    const run = writer.finish();
    this.runs.splice(from, to - from, run);
    for (const r of inputs) r.release();
  }

  private newWriter(expected: number): RunWriter {
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

const latin1 = (bytes: Uint8Array): string =>
  Buffer.isBuffer(bytes)
    ? bytes.toString('latin1', 0, bytes.length)
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1', 0, bytes.length);

/** A position in sorted entries; `key` undefined once past the end. */
interface Cursor {
  readonly key: Buffer | undefined;
  readonly value: Buffer | null;
  next(): void;
}

class MemCursor implements Cursor {
  key: Buffer | undefined;
  value: Buffer | null = null;
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
      this.key = undefined;
      return;
    }
    this.key = Buffer.from(k, 'latin1');
    const v = this.m.get(k)!;
    this.value = v === null ? null : Buffer.from(v, 'latin1');
  }
}

/**
 * The union of cursors (newest first): each key once, with the newest cursor's value. Starts
 * before the first entry: call {@link next} first. Sources tied with the winner advance at the
 * next step, so the winner's views stay valid until then.
 */
class MergeCursor implements Cursor {
  key: Buffer | undefined;
  value: Buffer | null = null;
  private advance: Cursor[] = [];

  constructor(private readonly cursors: readonly Cursor[]) {}

  next(): void {
    for (const c of this.advance) c.next();
    this.advance = [];
    let min: Cursor | undefined;
    for (const c of this.cursors) {
      if (c.key === undefined) continue;
      if (min === undefined) {
        min = c;
        this.advance.push(c);
        continue;
      }
      const cmp = c.key.compare(min.key!);
      if (cmp < 0) {
        min = c;
        this.advance = [c];
      } else if (cmp === 0) {
        this.advance.push(c);
      }
    }
    this.key = min?.key;
    this.value = min === undefined ? null : min.value;
  }
}
