/**
 * JSON Lines file sink. Each subtask writes a hidden in-progress file and, on roll or finish,
 * fsyncs, closes and renames it to a visible `part-<subtask>-<seq>.jsonl`: a visible part is
 * always complete. Output is buffered as one string and written with one syscall per
 * `bufferBytes`, never per record.
 *
 * Seam for exactly-once: in-progress files are the "pending" state of a two-phase commit;
 * `snapshotState`/`notifyCheckpointComplete` can later move the rename from roll/finish to
 * checkpoint completion without changing the file layout.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { describeSubtask, EddyError, InvalidArgumentError } from '../core/errors.js';
import type { ConnectorContext, Counter, Sink, SinkWriter } from '../runtime/io.js';

export interface FileSinkOptions {
  /** Output directory; created when missing. */
  path: string;
  /** Roll to a new part file once the current one holds this many bytes (default 128 MiB). */
  rollBytes?: number;
  /** Buffered output (in UTF-16 code units) that triggers a write (default 256 Ki). */
  bufferBytes?: number;
}

const DEFAULT_ROLL_BYTES = 128 * 1024 * 1024;
const DEFAULT_BUFFER = 256 * 1024;

const positiveInt = (v: number | undefined, what: string): void => {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) {
    throw new InvalidArgumentError(`file sink: ${what} must be a positive integer, got ${v}`);
  }
};

/**
 * Visible name of a complete part file.
 *
 * @example
 * partFileName(2, 0); // 'part-2-0.jsonl'
 */
export const partFileName = (subtask: number, seq: number): string =>
  `part-${subtask}-${seq}.jsonl`;

/**
 * Hidden name of a part file being written (skipped by file sources reading the directory).
 *
 * @example
 * inProgressFileName(2, 0); // '.part-2-0.jsonl.inprogress'
 */
export const inProgressFileName = (subtask: number, seq: number): string =>
  `.${partFileName(subtask, seq)}.inprogress`;

/**
 * Factories for file sinks.
 *
 * @example
 * stream.sinkTo(FileSink.jsonl<Total>({ path: 'out/totals', rollBytes: 64 * 1024 * 1024 }));
 */
export const FileSink = {
  /** One JSON value per line (`JSON.stringify`), in rolling part files per subtask. */
  jsonl<T>(options: FileSinkOptions): Sink<T> {
    if (typeof options.path !== 'string' || options.path === '') {
      throw new InvalidArgumentError('file sink: `path` must be a non-empty string');
    }
    positiveInt(options.rollBytes, 'rollBytes');
    positiveInt(options.bufferBytes, 'bufferBytes');
    return {
      defaultName: 'file-sink',
      createWriter: (ctx) => new JsonlFileWriter<T>(ctx, options),
    };
  },
};

/** Next free part sequence number for `subtask`: never overwrite output of an earlier run. */
const nextSeq = (dir: string, subtask: number): number => {
  const pattern = new RegExp(`^\\.?part-${subtask}-(\\d+)\\.jsonl(?:\\.inprogress)?$`);
  let next = 0;
  for (const name of readdirSync(dir)) {
    const m = pattern.exec(name);
    if (m !== null) next = Math.max(next, Number(m[1]) + 1);
  }
  return next;
};

class JsonlFileWriter<T> implements SinkWriter<T> {
  private pending = '';
  private fd = -1;
  private seq = 0;
  private bytesInPart = 0;
  private closed = false;
  private readonly dir: string;
  private readonly subtask: number;
  private readonly rollBytes: number;
  /** Buffer threshold; never above rollBytes so small roll sizes still roll promptly. */
  private readonly threshold: number;
  private readonly bytesWritten: Counter;

  constructor(
    private readonly ctx: ConnectorContext,
    options: FileSinkOptions,
  ) {
    this.dir = options.path;
    this.subtask = ctx.subtask.subtaskIndex;
    this.rollBytes = options.rollBytes ?? DEFAULT_ROLL_BYTES;
    this.threshold = Math.min(options.bufferBytes ?? DEFAULT_BUFFER, this.rollBytes);
    this.bytesWritten = ctx.metrics.counter('bytesWritten');
  }

  async open(): Promise<void> {
    this.io(this.dir, () => {
      mkdirSync(this.dir, { recursive: true });
      this.seq = nextSeq(this.dir, this.subtask);
    });
  }

  write(record: T): void {
    if (this.closed) throw this.stateError();
    let line: string | undefined;
    try {
      line = JSON.stringify(record);
    } catch (e) {
      throw this.encodeError((e as Error).message, e);
    }
    if (line === undefined) throw this.encodeError(`${typeof record} has no JSON form`);
    this.pending += `${line}\n`;
    if (this.pending.length >= this.threshold) this.writeOut();
  }

  /**
   * A no-op below the buffer threshold: buffered output is invisible until roll or finish
   * anyway, and writing per batch would cost a syscall for every small batch.
   */
  flush(): void {}

  async finish(): Promise<void> {
    this.writeOut();
    if (this.fd !== -1) this.commitPart();
    this.closed = true;
  }

  /** Drops the in-progress part; earlier rolled parts are complete and stay. */
  async abort(): Promise<void> {
    this.pending = '';
    this.closed = true;
    if (this.fd === -1) return;
    const fd = this.fd;
    this.fd = -1;
    // Cleanup after a failure must not mask the original error: failures here are ignored
    // (the file is hidden, so a leftover never counts as output).
    try {
      closeSync(fd);
    } catch {}
    try {
      unlinkSync(this.inProgressPath());
    } catch {}
  }

  private writeOut(): void {
    if (this.pending === '') return;
    const data = Buffer.from(this.pending, 'utf8');
    this.pending = '';
    const path = this.inProgressPath();
    this.io(path, () => {
      if (this.fd === -1) this.fd = openSync(path, 'w');
      // writeSync may write less than asked (e.g. nearly full disk): loop until done.
      for (let off = 0; off < data.length; ) off += writeSync(this.fd, data, off);
    });
    this.bytesWritten.inc(data.length);
    this.bytesInPart += data.length;
    if (this.bytesInPart >= this.rollBytes) this.commitPart();
  }

  /** Makes the in-progress part visible: fsync, close, rename, then fsync the directory. */
  private commitPart(): void {
    const from = this.inProgressPath();
    const to = join(this.dir, partFileName(this.subtask, this.seq));
    this.io(to, () => {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = -1;
      renameSync(from, to);
    });
    syncDirectory(this.dir);
    this.seq++;
    this.bytesInPart = 0;
  }

  private inProgressPath(): string {
    return join(this.dir, inProgressFileName(this.subtask, this.seq));
  }

  private io(path: string, action: () => void): void {
    try {
      action();
    } catch (e) {
      throw new EddyError(
        'EDDY_SINK_IO',
        `file sink (${describeSubtask(this.ctx.subtask)}): cannot write '${path}': ${(e as Error).message}`,
        { domain: 'external', cause: e },
      );
    }
  }

  private encodeError(reason: string, cause?: unknown): EddyError {
    return new EddyError(
      'EDDY_SINK_IO',
      `file sink (${describeSubtask(this.ctx.subtask)}) cannot encode a record as JSON: ${reason}`,
      { domain: 'user', cause },
    );
  }

  private stateError(): EddyError {
    return new EddyError(
      'EDDY_INTERNAL',
      `file sink (${describeSubtask(this.ctx.subtask)}): write after finish or abort`,
    );
  }
}

/**
 * Persists a rename (the directory entry) across a crash. Best effort: some platforms cannot
 * open directories, and the part file's own data is already fsynced.
 */
const syncDirectory = (dir: string): void => {
  let fd = -1;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
  } finally {
    if (fd !== -1) closeSync(fd);
  }
};
