/**
 * Bounded file sources (JSON Lines, CSV). One split per file. The split enumerator, in the job
 * master, lists the input files once and assigns file `i` to reader `i % p`; the readers do
 * not list anything. Each split's position (byte offset + lines consumed) lives in operator
 * list state in `split` mode, so a restore at another parallelism re-deals the files and each
 * continues exactly where it stopped (the enumerator then assigns nothing new: files added
 * since the checkpoint are not read). A reader declares each file as a split (`ctx.splits`)
 * and passes the split's handle with its records, so event time advances per file (per-split
 * watermarks); with event time it reads its files interleaved (round robin, one batch at a
 * time), without it one after another.
 */
import { join } from 'node:path';
import {
  BadRecordError,
  describeSubtask,
  EddyError,
  InvalidArgumentError,
} from '../core/errors.js';
import type {
  ConnectorContext,
  Counter,
  PollResult,
  Source,
  SourceReader,
  SplitEnumerator,
  SplitEnumeratorContext,
} from '../runtime/io.js';
import type { OperatorListState } from '../state/types.js';
import { type DeadLetterWriter, deadLettersFor, validateBadRecords } from './dead-letters.js';
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
  RateLimiter,
  splitShareRate,
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
  /**
   * How many splits (files) the source has in all, set by the enumerator: each reader reads
   * at `ratePerSecond × its unfinished splits / of`. Absent in state written before it existed
   * (then the rate is divided over the subtasks).
   */
  of?: number;
}

/** Options of `FileSource.jsonl` (and, with the CSV ones, `FileSource.csv`). */
export interface FileSourceOptions {
  /** A directory (its regular files, non-recursive, skipping `.x`/`_x`), a glob, or a file. */
  path: string;
  /**
   * Records per second in TOTAL, divided over the files (splits): a subtask reads at
   * `ratePerSecond × its unfinished files / all files`, so subtasks without files take no
   * share, whatever the parallelism.
   */
  ratePerSecond?: number;
  /** `'fail'` (default) throws BadRecordError; otherwise bad lines go to dead-letter files. */
  badRecords?: 'fail' | { deadLetterDir: string };
  /** Bytes per read (default 1 MiB). */
  chunkBytes?: number;
  /** ConnectorClock for the rate limiter (tests inject a fake one). */
  clock?: ConnectorClock;
}

/** Options of `FileSource.csv`: the file options plus the CSV ones. */
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
  validateBadRecords(o.badRecords, 'file source');
};

const makeSource = <T>(options: FileSourceOptions, format: LineFormat<T>): Source<T> => {
  validateOptions(options);
  return {
    defaultName: 'file-source',
    createReader: (ctx) => new FileSourceReader(ctx, options, format),
    createEnumerator: (ctx) => new FileSplitEnumerator(ctx, options.path),
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

/**
 * Copies and checks one split: a restored element (state written by another version may be
 * off) or one assigned by the enumerator (`what` says which, for the message).
 */
const checkSplit = (
  e: unknown,
  what = `restored '${FILE_SPLITS_STATE}' element`,
): FileSplitState => {
  const s = e as Partial<FileSplitState> | null;
  if (
    s === null ||
    typeof s !== 'object' ||
    typeof s.file !== 'string' ||
    !Number.isSafeInteger(s.offset) ||
    !Number.isSafeInteger(s.line) ||
    typeof s.finished !== 'boolean' ||
    (s.of !== undefined && !(Number.isSafeInteger(s.of) && s.of > 0))
  ) {
    throw new EddyError(
      'EDDY_STATE',
      `file source: ${what} is not a file position: ${JSON.stringify(e)}`,
    );
  }
  const split: FileSplitState = {
    file: s.file,
    offset: s.offset!,
    line: s.line!,
    finished: s.finished,
  };
  if (s.of !== undefined) split.of = s.of;
  return split;
};

/**
 * State of the file source's split enumerator (stored in the checkpoint's `_metadata`): the
 * files listed but not yet assigned to a reader, relative to the base directory, in listing
 * order. Normally empty: every file is assigned as soon as the readers are registered.
 */
export interface FileEnumeratorState {
  unassigned: string[];
  /** How many files the source has in all (assigned or not); absent in older state. */
  splits?: number;
}

const restoreEnumeratorState = (state: unknown): FileEnumeratorState => {
  // A checkpoint from before enumerators.
  if (state === undefined || state === null) return { unassigned: [] };
  const s = state as Partial<FileEnumeratorState>;
  if (
    typeof s !== 'object' ||
    !Array.isArray(s.unassigned) ||
    !s.unassigned.every((f) => typeof f === 'string') ||
    (s.splits !== undefined && !(Number.isSafeInteger(s.splits) && s.splits >= 0))
  ) {
    throw new EddyError(
      'EDDY_STATE',
      `file source: restored split enumerator state is not a file list: ${JSON.stringify(state)}`,
    );
  }
  return s.splits === undefined
    ? { unassigned: [...s.unassigned] }
    : { unassigned: [...s.unassigned], splits: s.splits };
};

/**
 * Runs in the job master. On a fresh start it lists the input files once and assigns file `i`
 * (in listing order) to reader `i % p`; restored, the readers keep the splits they had
 * (operator state) and it assigns only files its state lists as unassigned, the same way.
 * Either way every reader is then told there are no more splits. A split is a
 * {@link FileSplitState} at the start of the file.
 */
class FileSplitEnumerator implements SplitEnumerator {
  /** Files to assign, in order: the file at index `k` goes to reader `k % p`. */
  private files: readonly string[] = [];
  /** How many files the source has in all (for the rate's division); unknown in old state. */
  private total: number | undefined;
  /** Readers given their share of `files` already. */
  private readonly served = new Set<number>();

  constructor(
    private readonly ctx: SplitEnumeratorContext,
    private readonly path: string,
  ) {}

  async start(): Promise<void> {
    // Restored, the restored positions define the work: files added since the checkpoint
    // are not read.
    if (this.ctx.isRestored) {
      const state = restoreEnumeratorState(this.ctx.restoredState);
      this.files = state.unassigned;
      this.total = state.splits;
    } else {
      this.files = (await listInputFiles(this.path)).files;
      this.total = this.files.length;
    }
  }

  addReader(subtask: number): void {
    if (!this.served.has(subtask)) {
      this.served.add(subtask);
      const p = this.ctx.parallelism;
      const splits: FileSplitState[] = this.files
        .filter((_, k) => k % p === subtask)
        .map((file): FileSplitState => {
          const split: FileSplitState = { file, offset: 0, line: 0, finished: false };
          if (this.total !== undefined) split.of = this.total;
          return split;
        });
      if (splits.length > 0) this.ctx.assignSplits(subtask, splits);
    }
    this.ctx.signalNoMoreSplits(subtask);
  }

  snapshotState(_checkpointId: number): FileEnumeratorState {
    const p = this.ctx.parallelism;
    const unassigned = this.files.filter((_, k) => !this.served.has(k % p));
    return this.total === undefined ? { unassigned } : { unassigned, splits: this.total };
  }

  close(): void {}
}

/**
 * One input file being read: its position (kept up to date while the file is not open or once
 * it finished; while open, the reader holds the live position), its split handle for
 * per-split watermarks and, from its first visit on, its reader and decoder.
 */
interface FileSplit<T> {
  readonly state: FileSplitState;
  /** The file as the user named it: base directory joined with `state.file`. */
  readonly path: string;
  readonly handle: number;
  reader: LineReader | undefined;
  decode: LineDecoder<T> | undefined;
}

/**
 * Reads the splits restored from operator state (in `open`) and those the enumerator assigns
 * (`addSplits`); polls `'idle'` while it has nothing to read but more splits may come, and
 * `'end'` once the enumerator said there are no more and every split is finished.
 * With event time (`ctx.splits.watermarked`) reads its splits interleaved, round robin: each
 * poll emits up to `maxRecords` buffered records of one split and the next poll moves on to
 * the next unfinished split, so no file runs ahead of the others by more than about one batch
 * (per-split watermarks then stay close together). Without it, a poll stays on its split until
 * the split is exhausted. A split's reader is opened on its first visit and kept open until the
 * split is exhausted. Hazard: interleaved, every unfinished split visited so far holds an open
 * file and a read buffer (`chunkBytes`, default 1 MiB), so a subtask with many files holds
 * that many of each.
 */
class FileSourceReader<T> implements SourceReader<T> {
  private state!: OperatorListState<FileSplitState>;
  private splits: FileSplit<T>[] = [];
  /** The file names of `splits`. */
  private readonly files = new Set<string>();
  /** Directory the split file names are relative to. */
  private base = '';
  /** The enumerator will assign no more splits. */
  private noMoreSplits = false;
  /** Index of the split the next poll starts looking at (round robin). */
  private next = 0;
  private unfinished = 0;
  /** Readers of splits finished at the end of a poll's emit phase, closed by the next poll. */
  private closing: LineReader[] = [];
  private ended = false;
  private readonly bytesRead: Counter;
  /** Divides the total rate over the splits once they say how many there are (`of`). */
  private limiter: RateLimiter | undefined;
  /** How many splits the source has in all (from the splits' `of`), if known. */
  private splitsInAll: number | undefined;
  private readonly deadLetters: DeadLetterWriter | undefined;

  constructor(
    private readonly ctx: ConnectorContext,
    private readonly options: FileSourceOptions,
    private readonly format: LineFormat<T>,
  ) {
    this.bytesRead = ctx.metrics.counter('bytesRead');
    this.limiter = subtaskLimiter(options.ratePerSecond, ctx.subtask.parallelism, options.clock);
    this.deadLetters = deadLettersFor(options.badRecords, ctx);
  }

  /**
   * Restores the splits of a restored subtask and declares each one with `ctx.splits.add`; a
   * restored split that had already finished is declared and finished at once, so every
   * declared split is finished exactly once. New splits come from the enumerator.
   */
  async open(): Promise<void> {
    this.state = this.ctx.operatorState.getListState<FileSplitState>(FILE_SPLITS_STATE, 'split');
    this.base = await inputBase(this.options.path);
    if (this.ctx.isRestored) this.add(this.state.get().map((e) => checkSplit(e)));
  }

  /** Splits assigned by the enumerator: {@link FileSplitState}s, normally at offset 0. */
  addSplits(splits: readonly unknown[]): void {
    this.add(splits.map((e) => checkSplit(e, 'assigned split')));
  }

  notifyNoMoreSplits(): void {
    this.noMoreSplits = true;
  }

  /** Declares `states` as splits, then finishes the finished ones (all adds come first). */
  private add(states: readonly FileSplitState[]): void {
    const added: FileSplit<T>[] = [];
    for (const state of states) {
      if (this.files.has(state.file)) {
        throw new EddyError(
          'EDDY_INTERNAL',
          `file source: split '${state.file}' was assigned to ${describeSubtask(this.ctx.subtask)} twice`,
        );
      }
      const split: FileSplit<T> = {
        state,
        path: join(this.base, state.file),
        handle: this.ctx.splits.add(state.file),
        reader: undefined,
        decode: undefined,
      };
      this.splits.push(split);
      this.files.add(state.file);
      added.push(split);
    }
    for (const split of added) {
      if (split.state.finished) this.ctx.splits.finish(split.handle);
      else this.unfinished++;
      if (split.state.of !== undefined) this.splitsInAll = split.state.of;
    }
    this.updateRate();
  }

  /**
   * The reader's share of the total rate: `ratePerSecond × unfinished splits here / splits in
   * all` once the splits say how many there are; otherwise (state from before) the total
   * divided by the parallelism, as set up in the constructor.
   */
  private updateRate(): void {
    const rate = this.options.ratePerSecond;
    if (rate === undefined || this.splitsInAll === undefined) return;
    const share = splitShareRate(rate, this.unfinished, this.splitsInAll);
    if (this.limiter === undefined) this.limiter = new RateLimiter(share, this.options.clock);
    else this.limiter.setRate(share);
  }

  async poll(emit: (record: T, split?: number) => void, maxRecords: number): Promise<PollResult> {
    if (this.ended || this.ctx.stopSignal.aborted) return this.end();
    // Async phase: all awaiting happens before the first emit, so records of one batch are
    // emitted synchronously back to back.
    await this.closeFinished();
    const split = await this.ready();
    // Nothing to read: done, or waiting for splits (assigned before the first poll, normally).
    if (split === undefined) return this.noMoreSplits ? this.end() : 'idle';
    let budget = maxRecords;
    if (this.limiter !== undefined) {
      budget = this.limiter.available(maxRecords);
      if (budget === 0) budget = await this.limiter.acquire(maxRecords, this.ctx.stopSignal);
    }
    if (this.ctx.stopSignal.aborted) return this.end();
    const n = this.emitBuffered(split, emit, budget);
    this.limiter?.consume(n);
    const reader = split.reader!;
    if (reader.exhausted) {
      if (reader.eof) {
        // Finish now, so the split stops holding the watermark back at once rather than on
        // its next visit.
        this.closing.push(this.finishSplit(split));
      } else if (n === 0) {
        // The buffer held no complete line: this was no turn, the next poll reads more of
        // the same split (as a poll with records would have, had the line been buffered).
        return 'more';
      }
    }
    // Without event time, stay on this file until it is done: one file at a time reads
    // (and touches keys) with better locality, ~10% faster on keyed-sum.
    if (this.ctx.splits.watermarked) this.next = (this.next + 1) % this.splits.length;
    return 'more';
  }

  /** Emits up to `budget` records of `split` from its buffered lines. The per-record hot loop. */
  private emitBuffered(
    split: FileSplit<T>,
    emit: (record: T, split?: number) => void,
    budget: number,
  ): number {
    const reader = split.reader!;
    const decode = split.decode!;
    const handle = split.handle;
    let n = 0;
    while (n < budget) {
      const text = reader.next();
      if (text === null) break;
      let record: T;
      try {
        record = decode(text);
      } catch (e) {
        // Only decoding is guarded: errors thrown by `emit` (downstream) must propagate.
        this.badRecord(split, text, reader.line, e);
        continue;
      }
      emit(record, handle);
      n++;
    }
    return n;
  }

  private badRecord(split: FileSplit<T>, raw: string, line: number, e: unknown): void {
    const file = split.path;
    const reason = decodeFailureReason(e);
    if (this.deadLetters === undefined) throw new BadRecordError({ file, line }, reason, e);
    this.deadLetters.write({ file, line, error: reason, raw });
  }

  /**
   * The next unfinished split, from `next` on in round robin, with buffered input (opening
   * and filling as needed, finishing exhausted ones); undefined when none is left.
   */
  private async ready(): Promise<FileSplit<T> | undefined> {
    for (;;) {
      if (this.unfinished === 0) return undefined;
      const split = this.splits[this.next]!;
      if (split.state.finished) {
        this.next = (this.next + 1) % this.splits.length;
        continue;
      }
      const r = split.reader;
      if (r === undefined) {
        await this.openSplit(split);
      } else if (!r.exhausted) {
        return split;
      } else if (r.eof) {
        await this.finishSplit(split).close();
      } else {
        await this.fill(split, r);
      }
    }
  }

  private async fill(split: FileSplit<T>, r: LineReader): Promise<void> {
    try {
      this.bytesRead.inc(await r.fill());
    } catch (e) {
      throw this.ioError(split.path, e);
    }
  }

  private ioError(path: string, e: unknown): EddyError {
    const message = `file source: cannot read '${path}': ${(e as Error).message}`;
    return new EddyError('EDDY_SOURCE_IO', message, { domain: 'external', cause: e });
  }

  /**
   * Opens a split's file at its position and prepares its decoder (reading a CSV header);
   * a file that turns out to hold no rows is finished instead.
   */
  private async openSplit(split: FileSplit<T>): Promise<void> {
    const { path, state } = split;
    const chunkBytes = this.options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    let reader: LineReader;
    try {
      reader = await LineReader.open(path, {
        offset: state.offset,
        line: state.line,
        chunkBytes,
        shareChunkStrings: !this.format.keepsLineSubstrings,
      });
    } catch (e) {
      throw this.ioError(path, e);
    }
    try {
      const header = this.format.hasHeader ? await this.readHeader(reader, state, path) : undefined;
      split.reader = reader;
      if (this.format.hasHeader && header === undefined) {
        await this.finishSplit(split).close(); // no header, no rows: an empty or blank file
        return;
      }
      split.decode = this.decoderFor(path, header);
    } catch (e) {
      split.reader = undefined;
      await reader.close().catch(() => undefined);
      throw e;
    }
  }

  /**
   * At offset 0 the header is the reader's first line; when resuming mid-file it is read again
   * separately, since positions do not store it (those re-read bytes are not counted).
   */
  private async readHeader(reader: LineReader, state: FileSplitState, path: string) {
    try {
      if (state.offset > 0) return await readFirstLine(path);
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

  /**
   * Marks an open split finished at its reader's final position and tells `ctx.splits`;
   * returns the reader for the caller to close.
   */
  private finishSplit(split: FileSplit<T>): LineReader {
    const reader = split.reader!;
    split.state.offset = reader.offset;
    split.state.line = reader.line;
    split.state.finished = true;
    split.reader = undefined;
    split.decode = undefined;
    this.unfinished--;
    this.ctx.splits.finish(split.handle);
    this.updateRate();
    return reader;
  }

  private async closeFinished(): Promise<void> {
    const readers = this.closing;
    if (readers.length === 0) return;
    this.closing = [];
    await Promise.all(readers.map((r) => r.close()));
  }

  private end(): 'end' {
    this.ended = true;
    return 'end';
  }

  /** Writes the position of every split: open ones from their readers, the others as kept. */
  snapshotState(_checkpointId: number): void {
    // Fresh copies: the state backend may keep the objects, and ours keep changing.
    const elements = this.splits.map(({ state, reader }) =>
      reader === undefined
        ? { ...state }
        : {
            ...state,
            offset: reader.offset,
            line: reader.line,
            finished: false,
          },
    );
    this.state.update(elements);
  }

  async close(): Promise<void> {
    const readers = [...this.closing];
    this.closing = [];
    for (const split of this.splits) {
      if (split.reader !== undefined) readers.push(split.reader);
      split.reader = undefined;
    }
    try {
      const results = await Promise.allSettled(readers.map((r) => r.close()));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    } finally {
      this.deadLetters?.close();
    }
  }
}
