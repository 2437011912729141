/**
 * File I/O of block files: large sequential writes on the way out, positioned reads of only
 * the planned byte ranges on the way back, every block CRC-checked. The block formats live in
 * keyed-file.ts and operator-file.ts; this module knows only bytes.
 */
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { blockCrc } from './block-codec.js';
import { corruptError, errnoCode, hex32, ioError, missingFileError } from './errors.js';
import type { BlockRead } from './read-plan.js';
import type { BlockHandle } from './types.js';

/** Blocks are gathered into buffers of this size; each full buffer is one fs write. */
export const WRITE_BUFFER_BYTES = 1024 * 1024;

/** Appends bytes to a new file, one fs write per full buffer (never one per block). */
export class BatchedFileWriter {
  private readonly buf = Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
  private fill = 0;
  private flushed = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly path: string,
  ) {}

  /** Bytes appended so far: the file offset the next appended byte will have. */
  get size(): number {
    return this.flushed + this.fill;
  }

  /** Appends a copy of `bytes` (the caller may reuse them once this resolves). */
  async append(bytes: Uint8Array): Promise<void> {
    if (bytes.length > this.buf.length - this.fill) await this.flush();
    if (bytes.length >= this.buf.length) {
      // Larger than a whole buffer: copying would only add work; write it as it is.
      await this.writeAt(bytes, this.flushed);
      this.flushed += bytes.length;
      return;
    }
    this.buf.set(bytes, this.fill);
    this.fill += bytes.length;
  }

  /** Writes what is buffered and fsyncs: once this resolves the bytes are durable. */
  async finish(): Promise<number> {
    await this.flush();
    await this.fh.sync();
    return this.flushed;
  }

  private async flush(): Promise<void> {
    if (this.fill === 0) return;
    await this.writeAt(this.buf.subarray(0, this.fill), this.flushed);
    this.flushed += this.fill;
    this.fill = 0;
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
  try {
    const writer = new BatchedFileWriter(fh, path);
    const result = await fill(writer);
    const bytes = await writer.finish();
    await fh.close();
    return { result, bytes };
  } catch (e) {
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
      for (const block of read.blocks) {
        const start = block.offset - read.offset;
        const bytes = buf.subarray(start, start + block.length);
        checkCrc(path, block, bytes, describe);
        onBlock(block, bytes);
      }
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
  if (got < read.length) {
    const end = read.offset + got;
    const cut = read.blocks.find((b) => b.offset + b.length > end) ?? read.blocks[0]!;
    throw corruptError(
      path,
      `truncated: ${describe(cut)} needs bytes ${cut.offset}..${cut.offset + cut.length} ` +
        `but the file ends at byte ${end}`,
    );
  }
  return buf;
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
