/**
 * Bounded file sources (JSON Lines, CSV). One split per file; each split's position (byte
 * offset + lines consumed) lives in operator list state in `split` mode, so a restore at
 * another parallelism re-deals the files and each continues exactly where it stopped.
 */
import { join } from 'node:path';
import { BadRecordError, EddyError, InvalidArgumentError } from '../core/errors.js';
import type { ConnectorContext, Counter, Source, SourceReader } from '../runtime/io.js';
import type { OperatorListState } from '../state/types.js';
import { DeadLetterWriter } from './dead-letters.js';
import { inputBase, listInputFiles } from './file-list.js';
import {
  type CsvOptions,
  csvFormat,
  decodeFailureReason,
  jsonlFormat,
  type LineDecoder,
  type LineFormat,
} from './formats.js';
import { DEFAULT_CHUNK_BYTES, LineReader, readFirstLine, takeLine } from './line-reader.js';
import {
  type ConnectorClock,
  type RateLimiter,
  subtaskLimiter,
  validateRate,
} from './rate-limiter.js';

/** Name of the operator list state holding file positions. */
export const FILE_SPLITS_STATE = 'file-splits';

/** Position of one input file, as stored in operator state (one list element per file). */
export interface FileSplitState {
  /** Path relative to the source's base directory. */
  file: string;
  /** Byte offset of the next unread line. */
  offset: number;
  /** Lines consumed so far (including empty lines and a CSV header). */
  line: number;
  finished: boolean;
}

export interface FileSourceOptions {
  /** A directory (its regular files, non-recursive, skipping `.x`/`_x`), a glob, or a file. */
  path: string;
  /** Records per second in TOTAL; each of `p` subtasks reads at `ratePerSecond / p`. */
  ratePerSecond?: number;
  /** `'fail'` (default) throws BadRecordError; otherwise bad lines go to dead-letter files. */
  badRecords?: 'fail' | { deadLetterDir: string };
  /** Bytes per read (default 1 MiB). */
  chunkBytes?: number;
  /** ConnectorClock for the rate limiter (tests inject a fake one). */
  clock?: ConnectorClock;
}

export interface CsvFileSourceOptions<T> extends FileSourceOptions, CsvOptions<T> {}

const validateOptions = (o: FileSourceOptions): void => {
  if (typeof o.path !== 'string' || o.path === '') {
    throw new InvalidArgumentError('file source: `path` must be a non-empty string');
  }
  validateRate(o.ratePerSecond, 'file source');
  const chunk = o.chunkBytes;
  if (chunk !== undefined && (!Number.isSafeInteger(chunk) || chunk < 1)) {
    throw new InvalidArgumentError(
      `file source: chunkBytes must be a positive integer, got ${chunk}`,
    );
  }
  const bad = o.badRecords;
  const validBad =
    bad === undefined ||
    bad === 'fail' ||
    (typeof bad === 'object' && typeof bad.deadLetterDir === 'string' && bad.deadLetterDir !== '');
  if (!validBad) {
    throw new InvalidArgumentError(
      "file source: badRecords must be 'fail' or { deadLetterDir: '<non-empty path>' }",
    );
  }
};

const makeSource = <T>(options: FileSourceOptions, format: LineFormat<T>): Source<T> => {
  validateOptions(options);
  return {
    defaultName: 'file-source',
    createReader: (ctx) => new FileSourceReader(ctx, options, format),
  };
};

/**
 * Factories for bounded file sources.
 *
 * @example
 * const events = FileSource.jsonl<{ user: string; amount: number }>({ path: 'data/events' });
 * const rows = FileSource.csv({ path: 'data/*.csv', parse: (r) => ({ id: Number(r.id) }) });
 */
export const FileSource = {
  /** JSON Lines files: one JSON value per non-empty line. */
  jsonl<T = unknown>(options: FileSourceOptions): Source<T> {
    return makeSource(options, jsonlFormat<T>());
  },
  /** CSV files: a header line (or `columns`), one row per line, optional `parse` mapping. */
  csv<T = Record<string, string>>(options: CsvFileSourceOptions<T>): Source<T> {
    return makeSource(options, csvFormat<T>(options));
  },
};

/** Copies and checks one restored element: state written by another version may be off. */
const restoreSplit = (e: unknown): FileSplitState => {
  const s = e as Partial<FileSplitState> | null;
  if (
    s === null ||
    typeof s !== 'object' ||
    typeof s.file !== 'string' ||
    !Number.isSafeInteger(s.offset) ||
    !Number.isSafeInteger(s.line) ||
    typeof s.finished !== 'boolean'
  ) {
    throw new EddyError(
      'EDDY_STATE',
      `file source: restored '${FILE_SPLITS_STATE}' element is not a file position: ${JSON.stringify(e)}`,
    );
  }
  return { file: s.file, offset: s.offset!, line: s.line!, finished: s.finished };
};

class FileSourceReader<T> implements SourceReader<T> {
  private state!: OperatorListState<FileSplitState>;
  private base = '';
  private splits: FileSplitState[] = [];
  /** Index of the split being read (or next to open). */
  private current = 0;
  private reader: LineReader | undefined;
  private decode: LineDecoder<T> | undefined;
  private ended = false;
  private readonly bytesRead: Counter;
  private readonly limiter: RateLimiter | undefined;
  private readonly deadLetters: DeadLetterWriter | undefined;

  constructor(
    private readonly ctx: ConnectorContext,
    private readonly options: FileSourceOptions,
    private readonly format: LineFormat<T>,
  ) {
    this.bytesRead = ctx.metrics.counter('bytesRead');
    this.limiter = subtaskLimiter(options.ratePerSecond, ctx.subtask.parallelism, options.clock);
    const bad = options.badRecords;
    this.deadLetters =
      bad === undefined || bad === 'fail'
        ? undefined
        : new DeadLetterWriter(
            bad.deadLetterDir,
            ctx.subtask.subtaskIndex,
            ctx.metrics.counter('deadLetters'),
          );
  }

  async open(): Promise<void> {
    this.state = this.ctx.operatorState.getListState<FileSplitState>(FILE_SPLITS_STATE, 'split');
    if (this.ctx.isRestored) {
      // Restored positions define the work; files added since the checkpoint are not read.
      this.base = await inputBase(this.options.path);
      this.splits = this.state.get().map(restoreSplit);
      return;
    }
    const { base, files } = await listInputFiles(this.options.path);
    const { subtaskIndex, parallelism } = this.ctx.subtask;
    this.base = base;
    this.splits = files
      .filter((_, i) => i % parallelism === subtaskIndex)
      .map((file) => ({ file, offset: 0, line: 0, finished: false }));
  }

  async poll(emit: (record: T) => void, maxRecords: number): Promise<'more' | 'end'> {
    if (this.ended || this.ctx.stopSignal.aborted) return this.end();
    // Async phase: all awaiting happens before the first emit, so records of one batch are
    // emitted synchronously back to back.
    const reader = await this.ready();
    if (reader === undefined) return this.end();
    let budget = maxRecords;
    if (this.limiter !== undefined) {
      budget = this.limiter.available(maxRecords);
      if (budget === 0) budget = await this.limiter.acquire(maxRecords, this.ctx.stopSignal);
    }
    if (this.ctx.stopSignal.aborted) return this.end();
    const n = this.emitBuffered(reader, emit, budget);
    this.limiter?.consume(n);
    return 'more';
  }

  /** Emits up to `budget` records from the buffered lines. The per-record hot loop. */
  private emitBuffered(reader: LineReader, emit: (record: T) => void, budget: number): number {
    const decode = this.decode!;
    let n = 0;
    while (n < budget) {
      const text = reader.next();
      if (text === null) break;
      let record: T;
      try {
        record = decode(text);
      } catch (e) {
        // Only decoding is guarded: errors thrown by `emit` (downstream) must propagate.
        this.badRecord(text, reader.line, e);
        continue;
      }
      emit(record);
      n++;
    }
    return n;
  }

  private badRecord(raw: string, line: number, e: unknown): void {
    const file = this.displayPath(this.splits[this.current]!);
    const reason = decodeFailureReason(e);
    if (this.deadLetters === undefined) throw new BadRecordError({ file, line }, reason, e);
    this.deadLetters.write({ file, line, error: reason, raw });
  }

  /** The reader of the current split with buffered input, or undefined when all are done. */
  private async ready(): Promise<LineReader | undefined> {
    for (;;) {
      const r = this.reader;
      if (r === undefined) {
        if (!(await this.openNext())) return undefined;
      } else if (!r.exhausted) {
        return r;
      } else if (r.eof) {
        await this.finishCurrent(r);
      } else {
        await this.fill(r);
      }
    }
  }

  private async fill(r: LineReader): Promise<void> {
    try {
      this.bytesRead.inc(await r.fill());
    } catch (e) {
      throw this.ioError(this.displayPath(this.splits[this.current]!), e);
    }
  }

  private ioError(path: string, e: unknown): EddyError {
    const message = `file source: cannot read '${path}': ${(e as Error).message}`;
    return new EddyError('EDDY_SOURCE_IO', message, { domain: 'external', cause: e });
  }

  /** Opens the next unfinished split; false when there is none. */
  private async openNext(): Promise<boolean> {
    while (this.current < this.splits.length) {
      const split = this.splits[this.current]!;
      if (!split.finished) {
        const reader = await this.openSplit(split);
        if (reader !== undefined) {
          this.reader = reader;
          return true;
        }
      }
      this.current++;
    }
    return false;
  }

  /**
   * Opens a split's file at its position and prepares its decoder (reading a CSV header);
   * undefined when the file turns out to hold no rows (the split is then finished).
   */
  private async openSplit(split: FileSplitState): Promise<LineReader | undefined> {
    const path = this.displayPath(split);
    const chunkBytes = this.options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    let reader: LineReader;
    try {
      reader = await LineReader.open(path, {
        offset: split.offset,
        line: split.line,
        chunkBytes,
        shareChunkStrings: !this.format.keepsLineSubstrings,
      });
    } catch (e) {
      throw this.ioError(path, e);
    }
    try {
      const header = this.format.hasHeader ? await this.readHeader(reader, split, path) : undefined;
      if (this.format.hasHeader && header === undefined) {
        this.finish(split, reader); // no header, no rows: an empty or blank file
        await reader.close();
        return undefined;
      }
      this.decode = this.decoderFor(path, header);
      return reader;
    } catch (e) {
      await reader.close().catch(() => undefined);
      throw e;
    }
  }

  /**
   * At offset 0 the header is the reader's first line; when resuming mid-file it is read again
   * separately, since positions do not store it (those re-read bytes are not counted).
   */
  private async readHeader(reader: LineReader, split: FileSplitState, path: string) {
    try {
      if (split.offset > 0) return await readFirstLine(path);
      const header = await takeLine(reader);
      this.bytesRead.inc(reader.bytesRead);
      return header;
    } catch (e) {
      throw this.ioError(path, e);
    }
  }

  private decoderFor(path: string, header: { text: string; line: number } | undefined) {
    try {
      return this.format.decoder(header?.text);
    } catch (e) {
      // A bad header makes every row of the file undecodable: fail even in dead-letter mode.
      throw new BadRecordError(
        { file: path, line: header?.line ?? 1 },
        `invalid header: ${decodeFailureReason(e)}`,
        e,
      );
    }
  }

  private finish(split: FileSplitState, reader: LineReader): void {
    split.offset = reader.offset;
    split.line = reader.line;
    split.finished = true;
  }

  private async finishCurrent(reader: LineReader): Promise<void> {
    this.finish(this.splits[this.current]!, reader);
    this.reader = undefined;
    this.current++;
    await reader.close();
  }

  private displayPath(split: FileSplitState): string {
    return join(this.base, split.file);
  }

  private end(): 'end' {
    this.ended = true;
    return 'end';
  }

  snapshotState(_checkpointId: number): void {
    const active = this.reader === undefined ? undefined : this.splits[this.current];
    // Fresh copies: the state backend may keep the objects, and ours keep changing.
    const elements = this.splits.map((s) =>
      s === active
        ? { file: s.file, offset: this.reader!.offset, line: this.reader!.line, finished: false }
        : { ...s },
    );
    this.state.update(elements);
  }

  async close(): Promise<void> {
    const reader = this.reader;
    this.reader = undefined;
    try {
      await reader?.close();
    } finally {
      this.deadLetters?.close();
    }
  }
}
