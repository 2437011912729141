/**
 * File I/O of block files: large sequential writes on the way out, positioned reads of only
 * the planned byte ranges on the way back, every block CRC-checked. The block formats live in
 * keyed-file.ts and operator-file.ts; this module knows only bytes.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { blockCrc, MsgpackWriter } from './block-codec.js';
import { corruptError, errnoCode, hex32, ioError, missingFileError } from './errors.js';
import type { BlockRead } from './read-plan.js';
import type { BlockHandle } from './types.js';

/** Blocks are gathered into buffers of about this size; each full buffer is one fs write. */
export const WRITE_BUFFER_BYTES = 1024 * 1024;

/** Full buffers handed to the file system and not written yet, at most. */
const MAX_WRITES_IN_FLIGHT = 4;

/**
 * How long a writer holds the thread before it lets the event loop (the job's records) run:
 * well under the 20 ms a checkpoint may stall processing, leaving room for a GC pause.
 */
export const SLICE_MS = 10;

/** Lets the event loop run (I/O callbacks, messages: the job's records) before going on. */
const letTheLoopRun = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Appends blocks to a new file, sharing the thread with the job.
 *
 * Bytes: blocks are encoded straight into the current buffer ({@link encoder}) or copied into
 * it ({@link append}); once it holds a full buffer's worth, {@link endBlock} hands it to the
 * file system (a positioned write on libuv's thread pool) and encoding goes on in another
 * buffer. Up to {@link MAX_WRITES_IN_FLIGHT} writes run at once; the next full buffer then
 * waits for the oldest. Buffers are reused once written.
 *
 * Time: {@link endBlock} (and {@link pauseIfDue}, inside a large block) hand the thread back
 * to the event loop once the writer has held it for {@link SLICE_MS}, so a checkpoint stalls
 * processing for about that long at a time (plus one block of msgpackr's, which cannot be
 * split: see keyed-file.ts), and gets the thread for as long as processing leaves it free.
 */
export class BatchedFileWriter {
  private current = newBuffer();
  private readonly free: MsgpackWriter[] = [];
  private readonly inFlight: Promise<void>[] = [];
  private flushed = 0;
  private sliceStart = performance.now();

  constructor(
    private readonly fh: FileHandle,
    readonly path: string,
  ) {}

  /** Bytes appended so far: the file offset the next appended byte will have. */
  get size(): number {
    return this.flushed + this.current.length;
  }

  /**
   * Where to encode the next block: bytes appended to it are the file's next bytes. Call
   * {@link endBlock} after each block. Hazard: do not keep it across {@link endBlock}.
   */
  get encoder(): MsgpackWriter {
    return this.current;
  }

  /**
   * The bytes of the last block, which started at file offset `offset` (its {@link size}
   * before it was encoded): a view, valid until the next call into this writer.
   */
  blockBytes(offset: number): Uint8Array {
    return this.current.bytes(offset - this.flushed);
  }

  /**
   * Ends a block: hands the buffer to the file system once it holds a full buffer, and lets
   * the event loop run if the writer's time slice is used up.
   */
  async endBlock(): Promise<void> {
    if (this.current.length >= WRITE_BUFFER_BYTES) await this.flush();
    await this.pauseIfDue();
  }

  /**
   * Lets the event loop run if the writer has held the thread for {@link SLICE_MS}; for a
   * caller in the middle of a large block (the buffer is not flushed).
   */
  async pauseIfDue(): Promise<void> {
    if (performance.now() - this.sliceStart < SLICE_MS) return;
    await letTheLoopRun();
    this.sliceStart = performance.now();
  }

  /** Appends a copy of `bytes` as one block (the caller may reuse them at once). */
  async append(bytes: Uint8Array): Promise<void> {
    this.current.raw(bytes);
    await this.endBlock();
  }

  /** Writes what is buffered and fsyncs: once this resolves the bytes are durable. */
  async finish(): Promise<number> {
    await this.flush();
    while (this.inFlight.length > 0) await this.inFlight.shift();
    await this.fh.sync();
    return this.flushed;
  }

  /** Waits for the writes in flight, ignoring their outcome (before closing on failure). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inFlight.splice(0));
  }

  /** Hands the current buffer to the file system and goes on in a free one. */
  private async flush(): Promise<void> {
    const full = this.current;
    if (full.length === 0) return;
    // The clock is not reset here: a write that completed during an earlier pause has
    // resolved already, and awaiting it does not let the event loop run.
    if (this.inFlight.length >= MAX_WRITES_IN_FLIGHT) await this.inFlight.shift();
    const bytes = full.bytes();
    const write = this.writeAt(bytes, this.flushed).then(() => {
      full.reset();
      this.free.push(full);
    });
    // Handled here so that a failure while later buffers are encoded (e.g. a value that
    // cannot be encoded) is no unhandled rejection; the await in flush/finish reports it.
    write.catch(() => {});
    this.inFlight.push(write);
    this.flushed += bytes.length;
    this.current = this.free.pop() ?? newBuffer();
  }

  private async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    let done = 0;
    // fs may write less than asked (it rarely does for files); loop rather than assume.
    while (done < bytes.length) {
      const { bytesWritten } = await this.fh.write(
        bytes,
        done,
        bytes.length - done,
        position + done,
      );
      done += bytesWritten;
    }
  }
}

/**
 * A write buffer. It starts small and grows (doubling) to a full buffer and the block that
 * overflows it: a checkpoint of small state allocates little (large allocations pressure the
 * GC through V8's external memory accounting).
 */
const newBuffer = () => new MsgpackWriter(64 * 1024);

/**
 * Creates `path` (truncating any leftover from a crashed attempt), lets `fill` append to it,
 * then flushes and fsyncs. On any failure the partial file is removed (best effort) and an
 * `EDDY_CHECKPOINT_IO` error naming the file is thrown; the checkpoint then fails as a whole.
 */
export const writeSequentially = async <T>(
  path: string,
  fill: (writer: BatchedFileWriter) => Promise<T> | T,
): Promise<{ result: T; bytes: number }> => {
  let fh: FileHandle;
  try {
    fh = await open(path, 'w');
  } catch (e) {
    throw ioError('create checkpoint file', path, e);
  }
  let writer: BatchedFileWriter | undefined;
  try {
    writer = new BatchedFileWriter(fh, path);
    const result = await fill(writer);
    const bytes = await writer.finish();
    await fh.close();
    return { result, bytes };
  } catch (e) {
    await writer?.settle();
    await fh.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw ioError('write checkpoint file', path, e);
  }
};

/**
 * Reads the planned ranges of `path` with positioned reads (never the whole file unless the
 * plan says so), checks each block's CRC and hands its bytes to `onBlock`. Returns the bytes
 * read. `describe` names a block in errors ("key group 17").
 * @throws EddyError `EDDY_CHECKPOINT_CORRUPT` naming the file and block when the file is
 *   missing, too short, or a block's CRC does not match; `EDDY_CHECKPOINT_IO` for other fs errors.
 */
export const readBlocks = async <B extends BlockHandle>(
  path: string,
  reads: readonly BlockRead<B>[],
  describe: (block: B) => string,
  onBlock: (block: B, bytes: Uint8Array) => void,
): Promise<number> => {
  if (reads.length === 0) return 0;
  const fh = await openForRead(path);
  try {
    let total = 0;
    for (const read of reads) {
      const buf = await readRange(fh, path, read, describe);
      total += read.length;
      handBlocks(path, read, buf, describe, onBlock);
    }
    return total;
  } finally {
    await fh.close().catch(() => {});
  }
};

const openForRead = async (path: string): Promise<FileHandle> => {
  try {
    return await open(path, 'r');
  } catch (e) {
    throw errnoCode(e) === 'ENOENT' ? missingFileError(path, e) : ioError('open', path, e);
  }
};

const readRange = async <B extends BlockHandle>(
  fh: FileHandle,
  path: string,
  read: BlockRead<B>,
  describe: (block: B) => string,
): Promise<Buffer> => {
  const buf = Buffer.allocUnsafe(read.length);
  let got = 0;
  try {
    while (got < read.length) {
      const { bytesRead } = await fh.read(buf, got, read.length - got, read.offset + got);
      if (bytesRead === 0) break; // end of file
      got += bytesRead;
    }
  } catch (e) {
    throw ioError('read', path, e);
  }
  if (got < read.length) throw truncated(path, read, got, describe);
  return buf;
};

/** Checks the CRC of each block of `read` (read into `buf`) and hands it to `onBlock`. */
const handBlocks = <B extends BlockHandle>(
  path: string,
  read: BlockRead<B>,
  buf: Buffer,
  describe: (block: B) => string,
  onBlock: (block: B, bytes: Uint8Array) => void,
): void => {
  for (const block of read.blocks) {
    const start = block.offset - read.offset;
    const bytes = buf.subarray(start, start + block.length);
    checkCrc(path, block, bytes, describe);
    onBlock(block, bytes);
  }
};

const truncated = <B extends BlockHandle>(
  path: string,
  read: BlockRead<B>,
  got: number,
  describe: (block: B) => string,
) => {
  const end = read.offset + got;
  const cut = read.blocks.find((b) => b.offset + b.length > end) ?? read.blocks[0]!;
  return corruptError(
    path,
    `truncated: ${describe(cut)} needs bytes ${cut.offset}..${cut.offset + cut.length} ` +
      `but the file ends at byte ${end}`,
  );
};

const checkCrc = <B extends BlockHandle>(
  path: string,
  block: B,
  bytes: Uint8Array,
  describe: (block: B) => string,
): void => {
  const actual = blockCrc(bytes);
  if (actual === block.crc32 >>> 0) return;
  throw corruptError(
    path,
    `${describe(block)} (bytes ${block.offset}..${block.offset + block.length}) fails its CRC-32 ` +
      `check: expected ${hex32(block.crc32)}, got ${hex32(actual)}`,
  );
};

/**
 * {@link readBlocks}, synchronously: for a key group restored with its reads deferred to its
 * first access (keyed-file.ts `deferKeyGroups`), which happens inside a synchronous state call.
 * The same checks and errors. Returns the bytes read.
 */
export const readBlocksSync = <B extends BlockHandle>(
  path: string,
  reads: readonly BlockRead<B>[],
  describe: (block: B) => string,
  onBlock: (block: B, bytes: Uint8Array) => void,
): number => {
  if (reads.length === 0) return 0;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw errnoCode(e) === 'ENOENT' ? missingFileError(path, e) : ioError('open', path, e);
  }
  try {
    let total = 0;
    for (const read of reads) {
      const buf = Buffer.allocUnsafe(read.length);
      let got = 0;
      try {
        while (got < read.length) {
          const n = readSync(fd, buf, got, read.length - got, read.offset + got);
          if (n === 0) break; // end of file
          got += n;
        }
      } catch (e) {
        throw ioError('read', path, e);
      }
      if (got < read.length) throw truncated(path, read, got, describe);
      total += read.length;
      handBlocks(path, read, buf, describe, onBlock);
    }
    return total;
  } finally {
    closeSync(fd);
  }
};
