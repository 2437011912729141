/**
 * A run: one immutable file of entries sorted by key, written once, front to back, and read
 * by `pread` (never memory-mapped: pages read sit in the kernel's page cache, not in the
 * process's RSS). Its index (the first key and place of every block) and its Bloom filter
 * stay in memory and are never written: a run never outlives the store that wrote it.
 *
 * File: blocks of about `blockBytes`, each
 *   entries: [key length u16][key][value length u32, 0xffffffff for a deletion][value]
 *   then the entries' offsets in the block (u32 each) and their count (u32),
 * so a point read is one `pread` of one block and a binary search in it.
 *
 * Hazard: values and keys handed out are views of a reused buffer: valid until the next read
 * of the same run (point reads) or the next step of the same cursor. Callers decode at once.
 */
import { closeSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { BloomFilter, hashKey, hashRange } from './bloom.js';
import { compareBytes, copyBytes } from './bytes.js';
import type { MemValue } from './memtable.js';

const TOMBSTONE_LEN = 0xffffffff;
/** A key's length is 16 bits in the file. */
export const MAX_KEY = 0xffff;

const keyTooLong = (bytes: number): RangeError =>
  new RangeError(`a key of ${bytes} bytes: the store holds keys of up to ${MAX_KEY} bytes`);
const WRITE_CHUNK = 1 << 20;
const READ_SPAN = 256 * 1024;

/** A point read's answer when the run has no entry for the key. */
export const ABSENT: unique symbol = Symbol('absent');

export interface RunStats {
  readonly entries: number;
  readonly bytes: number;
}

/** Writes entries given in ascending key order into a new run file. */
export class RunWriter {
  private readonly fd: number;
  private chunk = Buffer.allocUnsafe(WRITE_CHUNK);
  private used = 0;
  private written = 0;
  private blockStart = 0;
  private blockOffsets: number[] = [];
  private blockFirst: string | undefined;
  private readonly firstKeys: string[] = [];
  private readonly offsets: number[] = [];
  private readonly lengths: number[] = [];
  /**
   * The Bloom filter, sized for `expectedKeys` (an upper bound); or, when that is not known
   * (`expectedKeys` undefined: an appended run), the key hashes, for a filter built at
   * {@link finish} with the exact count (4 bytes a key meanwhile).
   */
  private bloom: BloomFilter | undefined;
  private hashes: Uint32Array;
  private entries = 0;
  private maxBlock = 0;
  private last: string | undefined;
  /** The last key of {@link addRaw} (its first `lastLen` bytes; -1: none yet). */
  private lastKey = Buffer.allocUnsafe(64);
  private lastLen = -1;

  constructor(
    private readonly path: string,
    expectedKeys: number | undefined,
    private readonly blockBytes: number,
    private readonly bitsPerKey: number,
  ) {
    this.fd = openSync(path, 'w+');
    if (expectedKeys === undefined) {
      this.hashes = new Uint32Array(1024);
    } else {
      this.bloom = new BloomFilter(expectedKeys, bitsPerKey);
      this.hashes = new Uint32Array(0);
    }
  }

  /** Appends one entry (`null`: a deletion; bytes are copied). Keys must ascend strictly. */
  add(key: string, value: MemValue | Uint8Array): void {
    if (key.length > MAX_KEY) throw keyTooLong(key.length);
    if (this.last !== undefined && !(this.last < key)) {
      throw new Error(`internal: run keys out of order (${JSON.stringify(key)})`);
    }
    this.last = key;
    const need = 6 + key.length + (value === null ? 0 : value.length) + 4;
    this.reserve(need);
    const pos = this.written + this.used;
    if (this.blockFirst === undefined) {
      this.blockFirst = key;
      this.blockStart = pos;
    }
    this.blockOffsets.push(pos - this.blockStart);
    const c = this.chunk;
    let p = this.used;
    c.writeUInt16LE(key.length, p);
    p += 2;
    p += c.write(key, p, 'latin1');
    if (value === null) {
      c.writeUInt32LE(TOMBSTONE_LEN, p);
      p += 4;
    } else if (typeof value === 'string') {
      c.writeUInt32LE(value.length, p);
      p += 4;
      p += c.write(value, p, 'latin1');
    } else {
      c.writeUInt32LE(value.length, p);
      p += 4;
      c.set(value, p);
      p += value.length;
    }
    this.used = p;
    this.hash(hashKey(key));
    this.entries++;
    if (this.written + this.used - this.blockStart >= this.blockBytes) this.endBlock();
  }

  /** {@link add} from bytes: copies them. */
  addBytes(key: Buffer, value: Buffer | null): void {
    if (value === null) this.addRaw(key, 0, key.length, 0, -1);
    else this.addRaw(key, 0, key.length, 0, value.length, value);
  }

  /**
   * {@link add} from a buffer holding the key at `kOff` (`kLen` bytes) and the value at `vOff`
   * (`vLen` bytes, -1: a deletion) of `vBuf` (default: the same buffer): a merge's input,
   * copied with no allocation.
   */
  addRaw(buf: Buffer, kOff: number, kLen: number, vOff: number, vLen: number, vBuf = buf): void {
    const kEnd = kOff + kLen;
    if (kLen > MAX_KEY) throw keyTooLong(kLen);
    if (this.lastLen >= 0 && compareBytes(buf, kOff, kEnd, this.lastKey, 0, this.lastLen) <= 0) {
      throw new Error('internal: run keys out of order');
    }
    if (kLen > this.lastKey.length) this.lastKey = Buffer.allocUnsafe(kLen * 2);
    copyBytes(buf, kOff, kEnd, this.lastKey, 0);
    this.lastLen = kLen;
    this.reserve(6 + kLen + Math.max(0, vLen) + 4);
    const pos = this.written + this.used;
    if (this.blockFirst === undefined) {
      this.blockFirst = buf.toString('latin1', kOff, kEnd);
      this.blockStart = pos;
    }
    this.blockOffsets.push(pos - this.blockStart);
    const c = this.chunk;
    let p = this.used;
    c.writeUInt16LE(kLen, p);
    p += 2;
    p += copyBytes(buf, kOff, kEnd, c, p);
    if (vLen < 0) {
      c.writeUInt32LE(TOMBSTONE_LEN, p);
      p += 4;
    } else {
      c.writeUInt32LE(vLen, p);
      p += 4;
      p += copyBytes(vBuf, vOff, vOff + vLen, c, p);
    }
    this.used = p;
    this.hash(hashRange(buf, kOff, kEnd));
    this.entries++;
    if (this.written + this.used - this.blockStart >= this.blockBytes) this.endBlock();
  }

  /** Ends the file and opens it for reading; the writer must not be used after. */
  finish(): Run {
    if (this.blockFirst !== undefined) this.endBlock();
    this.flushChunk();
    return new Run(this.path, this.fd, {
      firstKeys: this.firstKeys,
      offsets: this.offsets,
      lengths: this.lengths,
      bloom: this.filter(),
      entries: this.entries,
      bytes: this.written,
      maxBlock: this.maxBlock,
      lastKey:
        this.last ??
        (this.lastLen < 0 ? undefined : this.lastKey.toString('latin1', 0, this.lastLen)),
    });
  }

  /** Closes and deletes an unfinished file (after a failure). Never throws. */
  abandon(): void {
    closeAndUnlink(this.fd, this.path);
  }

  /** Entries added so far. */
  get count(): number {
    return this.entries;
  }

  /** The largest key added so far (undefined: none). */
  get lastAdded(): string | undefined {
    return (
      this.last ?? (this.lastLen < 0 ? undefined : this.lastKey.toString('latin1', 0, this.lastLen))
    );
  }

  private hash(h: number): void {
    if (this.bloom !== undefined) {
      this.bloom.add(h);
      return;
    }
    if (this.entries === this.hashes.length) {
      const grown = new Uint32Array(this.hashes.length * 2);
      grown.set(this.hashes);
      this.hashes = grown;
    }
    this.hashes[this.entries] = h;
  }

  private filter(): BloomFilter {
    if (this.bloom !== undefined) return this.bloom;
    const bloom = new BloomFilter(this.entries, this.bitsPerKey);
    for (let i = 0; i < this.entries; i++) bloom.add(this.hashes[i]!);
    this.hashes = new Uint32Array(0);
    return bloom;
  }

  private endBlock(): void {
    const n = this.blockOffsets.length;
    this.reserve(4 * n + 4);
    const c = this.chunk;
    let p = this.used;
    for (const o of this.blockOffsets) {
      c.writeUInt32LE(o, p);
      p += 4;
    }
    c.writeUInt32LE(n, p);
    p += 4;
    this.used = p;
    const len = this.written + this.used - this.blockStart;
    this.firstKeys.push(this.blockFirst!);
    this.offsets.push(this.blockStart);
    this.lengths.push(len);
    if (len > this.maxBlock) this.maxBlock = len;
    this.blockFirst = undefined;
    this.blockOffsets = [];
  }

  /** Room for `bytes` more in the chunk: writes the chunk out (or grows it) first if needed. */
  private reserve(bytes: number): void {
    if (this.used + bytes <= this.chunk.length) return;
    this.flushChunk();
    if (bytes > this.chunk.length) this.chunk = Buffer.allocUnsafe(bytes);
  }

  private flushChunk(): void {
    let off = 0;
    while (off < this.used) {
      off += writeSync(this.fd, this.chunk, off, this.used - off, this.written + off);
    }
    this.written += this.used;
    this.used = 0;
  }
}

interface RunIndex {
  readonly firstKeys: readonly string[];
  readonly offsets: readonly number[];
  readonly lengths: readonly number[];
  readonly bloom: BloomFilter;
  readonly entries: number;
  readonly bytes: number;
  readonly maxBlock: number;
  /** The largest key (undefined: no entries). */
  readonly lastKey: string | undefined;
}

/** An open run: point reads, cursors, and a reference count (see {@link retain}). */
export class Run implements RunStats {
  readonly entries: number;
  readonly bytes: number;
  private readonly scratch: Buffer;
  private refs = 1;

  constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly index: RunIndex,
  ) {
    this.entries = index.entries;
    this.bytes = index.bytes;
    this.scratch = Buffer.allocUnsafe(Math.max(16, index.maxBlock));
  }

  /** Memory held by the index and filter (approximate). */
  get memoryBytes(): number {
    let keys = 0;
    for (const k of this.index.firstKeys) keys += k.length + 16;
    return this.index.bloom.bytes + keys + this.index.firstKeys.length * 24;
  }

  /** The entry for `key`: its value (a view, see the file's hazard), `null` if deleted, or ABSENT. */
  get(key: string, keyBytes: Buffer, hash: number): Buffer | null | typeof ABSENT {
    if (!this.index.bloom.mayHave(hash)) return ABSENT;
    const b = blockFor(this.index.firstKeys, key);
    if (b < 0) return ABSENT;
    const len = this.index.lengths[b]!;
    const block = this.scratch;
    readFully(this.fd, block, len, this.index.offsets[b]!);
    const n = block.readUInt32LE(len - 4);
    const base = len - 4 - 4 * n;
    let lo = 0;
    let hi = n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const off = block.readUInt32LE(base + 4 * mid);
      const klen = block.readUInt16LE(off);
      const cmp = compareBytes(keyBytes, 0, keyBytes.length, block, off + 2, off + 2 + klen);
      if (cmp === 0) {
        const vlen = block.readUInt32LE(off + 2 + klen);
        if (vlen === TOMBSTONE_LEN) return null;
        const v = off + 6 + klen;
        return block.subarray(v, v + vlen);
      }
      if (cmp < 0) hi = mid - 1;
      else lo = mid + 1;
    }
    return ABSENT;
  }

  /** The run's largest key, deletions included (undefined if empty). */
  get lastKey(): string | undefined {
    return this.index.lastKey;
  }

  /** A cursor at the first entry with key ≥ `start`. */
  cursor(start: string | undefined): RunCursor {
    return new RunCursor(this.fd, this.index, start);
  }

  /** One more holder (a snapshot); {@link release} when done. */
  retain(): void {
    this.refs++;
  }

  /** Drops a holder; the last one closes and deletes the file. */
  release(): void {
    if (--this.refs > 0) return;
    closeAndUnlink(this.fd, this.path);
  }
}

/** Closes `fd` and deletes `path`; never throws (a leftover file goes with its directory). */
const closeAndUnlink = (fd: number, path: string): void => {
  try {
    closeSync(fd);
  } catch {}
  try {
    unlinkSync(path);
  } catch {}
};

/** Index of the block that would hold `key`: the last one whose first key is ≤ it, or -1. */
const blockFor = (firstKeys: readonly string[], key: string): number => {
  let lo = 0;
  let hi = firstKeys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (firstKeys[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
};

const readFully = (fd: number, buf: Buffer, len: number, pos: number): void => {
  let off = 0;
  while (off < len) {
    const n = readSync(fd, buf, off, len - off, pos + off);
    if (n === 0) throw new Error(`run file ended early (at byte ${pos + off})`);
    off += n;
  }
};

/**
 * Walks a run in key order, reading spans of consecutive blocks at a time. The current entry
 * is `buf` at `kOff` (`kLen` bytes) and `vOff` (`vLen` bytes, -1: a deletion), valid until the
 * next {@link next}; `buf` is undefined past the end.
 */
export class RunCursor {
  buf: Buffer | undefined;
  kOff = 0;
  kLen = 0;
  vOff = 0;
  vLen = 0;
  private span: Buffer = Buffer.allocUnsafe(0);
  private block = -1;
  /** Blocks [spanFirst, spanEnd) are in `span`, block `spanFirst` at 0. */
  private spanFirst = 0;
  private spanEnd = 0;
  private blockBase = 0;
  private entry = 0;
  private count = 0;
  private offsBase = 0;

  constructor(
    private readonly fd: number,
    private readonly index: RunIndex,
    start: string | undefined,
  ) {
    if (index.firstKeys.length === 0) return;
    const b = start === undefined ? 0 : Math.max(0, blockFor(index.firstKeys, start));
    this.enter(b);
    if (start !== undefined && start.length > 0) {
      const s = Buffer.from(start, 'latin1');
      while (
        this.buf !== undefined &&
        compareBytes(this.buf, this.kOff, this.kOff + this.kLen, s, 0, s.length) < 0
      ) {
        this.next();
      }
    }
  }

  next(): void {
    this.entry++;
    if (this.entry < this.count) {
      this.load();
      return;
    }
    if (this.block + 1 < this.index.firstKeys.length) this.enter(this.block + 1);
    else this.buf = undefined;
  }

  private enter(b: number): void {
    if (b < this.spanFirst || b >= this.spanEnd) this.readSpan(b);
    this.block = b;
    this.blockBase = this.index.offsets[b]! - this.index.offsets[this.spanFirst]!;
    const len = this.index.lengths[b]!;
    this.count = this.span.readUInt32LE(this.blockBase + len - 4);
    this.offsBase = this.blockBase + len - 4 - 4 * this.count;
    this.entry = 0;
    this.load();
  }

  private load(): void {
    const buf = this.span;
    const off = this.blockBase + buf.readUInt32LE(this.offsBase + 4 * this.entry);
    const klen = buf.readUInt16LE(off);
    this.buf = buf;
    this.kOff = off + 2;
    this.kLen = klen;
    const vlen = buf.readUInt32LE(off + 2 + klen);
    this.vOff = off + 6 + klen;
    this.vLen = vlen === TOMBSTONE_LEN ? -1 : vlen;
  }

  /** Reads block `b` and the blocks after it, up to READ_SPAN bytes (at least one block). */
  private readSpan(b: number): void {
    const { offsets, lengths } = this.index;
    let end = b + 1;
    let bytes = lengths[b]!;
    while (end < offsets.length && bytes + lengths[end]! <= READ_SPAN) bytes += lengths[end++]!;
    // A new buffer per span: entries handed out from the old one stay valid for their caller.
    this.span = Buffer.allocUnsafe(bytes);
    readFully(this.fd, this.span, bytes, offsets[b]!);
    this.spanFirst = b;
    this.spanEnd = end;
  }
}
