/**
 * JSON Lines file sink. Each subtask writes a hidden in-progress file
 * `.part-<subtask>-<seq>.jsonl.inprogress`; it becomes the visible `part-<subtask>-<seq>.jsonl`
 * only by an atomic rename after fsync and close, so a visible part is always complete and
 * never changes. Output is buffered as one string and written with one syscall per
 * `bufferBytes`, never per record.
 *
 * When is a sealed in-progress file made visible?
 * - Without checkpointing (`ctx.checkpointing` false): at once, on roll and on finish.
 * - With checkpointing: by a two-phase commit. A roll, `finish` and `snapshotState` *seal*
 *   the current file as a pending part; `snapshotState(cp)` assigns the parts sealed since
 *   the previous snapshot to checkpoint `cp` and stores every uncommitted part in the union
 *   list state {@link PENDING_STATE}; `notifyCheckpointComplete(cp)` renames the parts of
 *   `cp` and older. On restore, the parts of the restored (completed) checkpoint are
 *   committed and every other hidden file is discarded, because the source replays its
 *   output. Readers therefore see each record exactly once, provided the job restores from
 *   its latest completed checkpoint: restoring an older one re-emits output that a newer
 *   checkpoint already committed (as with any two-phase-commit sink).
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { describeSubtask, EddyError, InvalidArgumentError } from '../core/errors.js';
import type { ConnectorContext, Counter, Sink, SinkWriter } from '../runtime/io.js';
import type { OperatorListState } from '../state/types.js';

export interface FileSinkOptions {
  /** Output directory; created when missing. */
  path: string;
  /** Roll to a new part file once the current one holds this many bytes (default 128 MiB). */
  rollBytes?: number;
  /** Buffered output (in UTF-16 code units) that triggers a write (default 256 Ki). */
  bufferBytes?: number;
}

/**
 * A sealed in-progress file waiting for its checkpoint to complete: one element of the
 * operator list state {@link PENDING_STATE}. Names are relative to the output directory.
 *
 * @example
 * { checkpointId: 7, inProgress: '.part-2-5.jsonl.inprogress', final: 'part-2-5.jsonl' }
 */
export interface PendingPart {
  /** The checkpoint whose completion makes the part visible. */
  readonly checkpointId: number;
  readonly inProgress: string;
  readonly final: string;
}

/**
 * Operator list state holding the pending parts, in `union` mode: after a restore at any
 * parallelism every subtask sees the parts of all old subtasks, and commits those it owns.
 */
export const PENDING_STATE = 'file-sink-pending';

/**
 * `checkpointId` of a part sealed between checkpoints (by a roll, or by `finish` for the
 * job's final checkpoint): the next `snapshotState(cp)` relabels it to `cp`. Stands in for
 * +Infinity, which JSON cannot hold; it is never written to operator state, and no real
 * checkpoint id reaches it, so `notifyCheckpointComplete` never commits such a part early.
 */
export const NEXT_CHECKPOINT = Number.MAX_SAFE_INTEGER;

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

/** Anchored, so a name taken from restored state can never point outside the directory. */
const PART_NAME = /^part-(\d+)-(\d+)\.jsonl$/;
const IN_PROGRESS_NAME = /^\.part-(\d+)-(\d+)\.jsonl\.inprogress$/;

/**
 * The new subtask that commits or discards the files an old subtask wrote, after a restore
 * at `parallelism`. Keyed by the old subtask index, not by a hash of the file name: files
 * named with index `i < parallelism` thus belong to new subtask `i` itself, the only one
 * creating new files under that index, and it cleans them up before it writes. With a
 * per-file hash, another subtask could list and delete a live in-progress file that subtask
 * `i` had just created (subtasks open concurrently).
 */
const restoreOwner = (oldSubtask: number, parallelism: number): number => oldSubtask % parallelism;

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
const nextSeq = (names: readonly string[], subtask: number): number => {
  const pattern = new RegExp(`^\\.?part-${subtask}-(\\d+)\\.jsonl(?:\\.inprogress)?$`);
  let next = 0;
  for (const name of names) {
    const m = pattern.exec(name);
    if (m !== null) next = Math.max(next, Number(m[1]) + 1);
  }
  return next;
};

const exists = (path: string): boolean => statSync(path, { throwIfNoEntry: false }) !== undefined;

class JsonlFileWriter<T> implements SinkWriter<T> {
  /** Encoded records not yet written to the current in-progress file. */
  private buffer = '';
  private fd = -1;
  private seq = 0;
  private bytesInPart = 0;
  private closed = false;
  /** Sealed parts not yet committed, oldest first (checkpointing only). */
  private pendingParts: PendingPart[] = [];
  private pendingState: OperatorListState<PendingPart> | undefined;
  private readonly dir: string;
  private readonly subtask: number;
  private readonly checkpointing: boolean;
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
    this.checkpointing = ctx.checkpointing;
    this.rollBytes = options.rollBytes ?? DEFAULT_ROLL_BYTES;
    this.threshold = Math.min(options.bufferBytes ?? DEFAULT_BUFFER, this.rollBytes);
    this.bytesWritten = ctx.metrics.counter('bytesWritten');
  }

  async open(): Promise<void> {
    this.io(this.dir, () => {
      mkdirSync(this.dir, { recursive: true });
      // Listed before recovery discards anything, so the next run never reuses the name of a
      // discarded file: a stale reference to it (from a checkpoint newer than the one restored)
      // then fails as lost data instead of committing unrelated output. Race-free: after a
      // restore only this subtask touches files named with its index (see restoreOwner).
      this.seq = nextSeq(readdirSync(this.dir), this.subtask);
    });
    if (this.checkpointing) {
      this.pendingState = this.ctx.operatorState.getListState<PendingPart>(PENDING_STATE, 'union');
      if (this.ctx.isRestored) this.recover(this.pendingState.get());
      // The restored union list holds every old subtask's parts, all handled by now; left in
      // place, each subtask would snapshot all of them again should snapshotState be skipped.
      this.pendingState.clear();
    }
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
    this.buffer += `${line}\n`;
    if (this.buffer.length >= this.threshold) this.writeOut();
  }

  /**
   * A no-op below the buffer threshold: buffered output is invisible until roll, finish or
   * checkpoint anyway, and writing per batch would cost a syscall for every small batch.
   */
  flush(): void {}

  /**
   * Without checkpointing, makes the last part visible. With checkpointing, seals it as a
   * pending part for the final checkpoint: the runtime then calls `snapshotState(finalId)`,
   * which assigns it to `finalId`, and `notifyCheckpointComplete(finalId)`, which commits it.
   */
  async finish(): Promise<void> {
    this.writeOut();
    if (this.fd !== -1) this.endPart();
    this.closed = true;
  }

  /**
   * Drops the current in-progress part only. Sealed pending parts stay: the checkpoint they
   * belong to may still complete, or be restored, and then they must be committed. (Without
   * checkpointing, rolled parts are already complete and visible, and stay too.)
   */
  async abort(): Promise<void> {
    this.buffer = '';
    this.closed = true;
    if (this.fd === -1) return;
    const fd = this.fd;
    this.fd = -1;
    // Cleanup after a failure must not mask the original error: failures here are ignored
    // (the file is hidden, so a leftover never counts as output; a restore discards it).
    try {
      closeSync(fd);
    } catch {}
    try {
      unlinkSync(this.inProgressPath());
    } catch {}
  }

  snapshotState(checkpointId: number): void {
    if (!this.checkpointing) return;
    this.writeOut();
    if (this.fd !== -1) this.seal();
    let sealedSinceLast = false;
    this.pendingParts = this.pendingParts.map((part) => {
      if (part.checkpointId !== NEXT_CHECKPOINT) return part;
      sealedSinceLast = true;
      // A new object, not a mutation: the state backend may hold earlier elements by reference.
      return { ...part, checkpointId };
    });
    // The parts' data is fsynced by seal(); their directory entries must be durable too
    // before the checkpoint can complete, or a machine crash could lose a committed file.
    if (sealedSinceLast) syncDirectory(this.dir);
    this.pendingState?.update(this.pendingParts);
  }

  async notifyCheckpointComplete(checkpointId: number): Promise<void> {
    const due = this.pendingParts.filter((part) => part.checkpointId <= checkpointId);
    if (due.length === 0) return;
    // If a commit fails midway, the parts already committed stay in the list: committing
    // is idempotent, so a retry or a restore skips them.
    for (const part of due) this.commit(part);
    syncDirectory(this.dir);
    this.pendingParts = this.pendingParts.filter((part) => part.checkpointId > checkpointId);
  }

  /**
   * Restore with checkpointing: the union list holds the pending parts of every old subtask
   * from a checkpoint that completed, so all of them become visible, each committed by its
   * owner. Then the owner discards every other hidden file: output after the checkpoint, or
   * of a checkpoint that never completed, which the source will replay.
   */
  private recover(restored: readonly unknown[]): void {
    const parallelism = this.ctx.subtask.parallelism;
    const referenced = new Set<string>();
    for (const element of restored) {
      const { part, oldSubtask } = this.parseRestored(element);
      referenced.add(part.inProgress);
      if (restoreOwner(oldSubtask, parallelism) === this.subtask) this.commit(part);
    }
    this.io(this.dir, () => {
      for (const name of readdirSync(this.dir)) {
        const m = IN_PROGRESS_NAME.exec(name);
        if (m === null || referenced.has(name)) continue;
        if (restoreOwner(Number(m[1]), parallelism) !== this.subtask) continue;
        unlinkSync(join(this.dir, name));
      }
    });
    syncDirectory(this.dir);
  }

  /**
   * Renames a pending part to its visible name. Idempotent: a part found under its visible
   * name only was committed before (by an earlier notify, or an earlier restore).
   */
  private commit(part: PendingPart): void {
    const from = join(this.dir, part.inProgress);
    const to = join(this.dir, part.final);
    this.io(to, () => {
      const hidden = exists(from);
      const visible = exists(to);
      if (hidden && visible) {
        // Cannot happen with names from nextSeq; renaming would replace committed output.
        throw new Error(`both '${part.inProgress}' and '${part.final}' exist`);
      }
      if (hidden) renameSync(from, to);
      else if (!visible) {
        throw new Error(
          `pending part '${part.inProgress}' of checkpoint ${part.checkpointId} is missing ` +
            'and was never committed: its output is lost',
        );
      }
    });
  }

  private parseRestored(element: unknown): { part: PendingPart; oldSubtask: number } {
    if (typeof element === 'object' && element !== null) {
      const { checkpointId, inProgress, final } = element as Record<string, unknown>;
      const m = typeof final === 'string' ? PART_NAME.exec(final) : null;
      if (m !== null && inProgress === `.${final}.inprogress` && typeof checkpointId === 'number') {
        return {
          part: { checkpointId, inProgress, final: final as string },
          oldSubtask: Number(m[1]),
        };
      }
    }
    let shown: string;
    try {
      shown = JSON.stringify(element) ?? String(element);
    } catch {
      shown = String(element);
    }
    throw new EddyError(
      'EDDY_CHECKPOINT_CORRUPT',
      `file sink (${describeSubtask(this.ctx.subtask)}): restored state '${PENDING_STATE}' ` +
        `holds a malformed element: ${shown}`,
    );
  }

  private writeOut(): void {
    if (this.buffer === '') return;
    const data = Buffer.from(this.buffer, 'utf8');
    this.buffer = '';
    const path = this.inProgressPath();
    this.io(path, () => {
      // 'wx': fail rather than truncate should the name exist (another job writing into the
      // same directory), which would destroy output possibly already part of a checkpoint.
      if (this.fd === -1) this.fd = openSync(path, 'wx');
      // writeSync may write less than asked (e.g. nearly full disk): loop until done.
      for (let off = 0; off < data.length; ) off += writeSync(this.fd, data, off);
    });
    this.bytesWritten.inc(data.length);
    this.bytesInPart += data.length;
    if (this.bytesInPart >= this.rollBytes) this.endPart();
  }

  /** Ends the current part: visible at once, or pending until its checkpoint completes. */
  private endPart(): void {
    if (this.checkpointing) this.seal();
    else this.commitPart();
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

  /**
   * Makes the in-progress part durable (fsync, close) and records it as pending for the next
   * checkpoint; it stays hidden. The next write opens a new part.
   */
  private seal(): void {
    const inProgress = inProgressFileName(this.subtask, this.seq);
    this.io(join(this.dir, inProgress), () => {
      fsyncSync(this.fd);
      closeSync(this.fd);
      this.fd = -1;
    });
    this.pendingParts.push({
      checkpointId: NEXT_CHECKPOINT,
      inProgress,
      final: partFileName(this.subtask, this.seq),
    });
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
 * Persists renames and new directory entries across a crash. Best effort: some platforms
 * cannot open directories, and the part files' own data is already fsynced.
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
