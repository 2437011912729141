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
 *   `cp` and older. An aborted checkpoint (`notifyCheckpointAborted`) changes nothing: its
 *   parts stay pending, and the next completed checkpoint commits them. On restore, the parts
 *   of the restored (completed) checkpoint are committed and every other hidden file is
 *   discarded, because the source replays its output. Readers therefore see each record
 *   exactly once.
 *
 * Restoring a checkpoint older than the newest one committed into the directory (a fallback
 * past a corrupted checkpoint, an old savepoint) *retracts* the output committed after it:
 * `snapshotState(cp)` also records, per part-file subtask index, the first sequence number
 * `cp` does not cover (union list state {@link SEQ_STATE}), and on restore the owner of that
 * index deletes every visible part numbered at or above it (counted in the metric
 * `rolledBackFiles`) before anything is written. The committed content of the directory is
 * then exactly the output up to the restored checkpoint again, and the replay completes it
 * exactly once. A reader that consumed retracted files before the restore has seen records
 * that will be produced again; that cannot be helped. A checkpoint from before this state
 * existed (no {@link SEQ_STATE} element for an index) retracts nothing for that index.
 * Retracted names are not reused right away (numbering continues after the highest part
 * ever seen), so a stale reference from an abandoned newer checkpoint fails as lost data
 * instead of accepting unrelated output.
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

/** Options of `FileSink.jsonl`. */
export interface FileSinkOptions {
  /** Output directory; created when missing. */
  path: string;
  /** Roll to a new part file once the current one holds this many bytes (default 128 MiB). */
  rollBytes?: number;
  /** Buffered output (in UTF-16 code units) that triggers a write (default 256 Ki). */
  bufferBytes?: number;
  /**
   * What a run that starts from scratch (no checkpoint or savepoint restored) does when the
   * directory already holds part files of an earlier run: `'fail'` (default) stops before
   * anything runs, naming the directory; `'append'` adds new part files beside them;
   * `'replace'` deletes the old part files first. A restored run always continues its own
   * output.
   */
  existingOutput?: 'fail' | 'append' | 'replace';
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
 * One element of the union list state {@link SEQ_STATE}: every part file (visible or hidden)
 * of part-file subtask index `subtask` numbered `nextSeq` or higher was created after the
 * checkpoint holding this element, so restoring that checkpoint deletes it.
 *
 * @example
 * { subtask: 2, nextSeq: 6 } // part-2-0 … part-2-5 are this checkpoint's; part-2-6 on are not
 */
export interface SeqWatermark {
  /** The subtask index in the part file names (that of an old subtask after rescaling). */
  readonly subtask: number;
  /** The first sequence number the checkpoint does not cover. */
  readonly nextSeq: number;
}

/**
 * Union list state of {@link SeqWatermark}s: each subtask records one for its own index and
 * one for every old index it took over on restore (so rescaling down and up again keeps them).
 */
export const SEQ_STATE = 'file-sink-seq';

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
    const existing = options.existingOutput ?? 'fail';
    if (!['fail', 'append', 'replace'].includes(existing)) {
      throw new InvalidArgumentError(
        `file sink: existingOutput must be 'fail', 'append' or 'replace', got '${existing}'`,
      );
    }
    return {
      defaultName: 'file-sink',
      createWriter: (ctx) => new JsonlFileWriter<T>(ctx, options),
      initializeGlobal: (ctx) => {
        // Only a run's first attempt from scratch: a restart or a restore continues the
        // directory's own output.
        if (ctx.attempt === 0 && ctx.restoredCheckpointId === undefined) {
          checkExistingOutput(options.path, existing);
        }
      },
    };
  },
};

/**
 * A fresh run into a directory with part files would silently mix two runs' output: refuse,
 * or delete them (hidden in-progress leftovers too) when asked to replace.
 */
const checkExistingOutput = (dir: string, mode: 'fail' | 'append' | 'replace'): void => {
  if (mode === 'append') return;
  let parts: PartFile[];
  try {
    parts = readdirSync(dir).flatMap((name) => parsePartFile(name) ?? []);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new EddyError('EDDY_SINK_IO', `file sink: cannot list ${dir}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (mode === 'replace') {
    for (const p of parts) unlinkSync(join(dir, p.name));
    return;
  }
  const visible = parts.filter((p) => p.visible).length;
  if (visible === 0) return;
  throw new EddyError(
    'EDDY_INVALID_ARGUMENT',
    `file sink: the output directory ${dir} already holds ${visible} part file(s) from an earlier run; this run starts from scratch and would add to them. Remove them or choose another directory, or set FileSink.jsonl({ path, existingOutput: 'append' | 'replace' }) (a run restored with --resume or --from-savepoint continues its own output)`,
    { domain: 'user' },
  );
};

/** A part file name taken apart; undefined for any other name. */
interface PartFile {
  readonly name: string;
  /** Subtask index in the name. */
  readonly index: number;
  readonly seq: number;
  readonly visible: boolean;
}

const parsePartFile = (name: string): PartFile | undefined => {
  const visible = PART_NAME.exec(name);
  if (visible !== null) {
    return { name, index: Number(visible[1]), seq: Number(visible[2]), visible: true };
  }
  const hidden = IN_PROGRESS_NAME.exec(name);
  if (hidden !== null) {
    return { name, index: Number(hidden[1]), seq: Number(hidden[2]), visible: false };
  }
  return undefined;
};

/** Next free part sequence number for `index`: never overwrite output of an earlier run. */
const nextFreeSeq = (files: readonly PartFile[], index: number): number => {
  let next = 0;
  for (const f of files) if (f.index === index) next = Math.max(next, f.seq + 1);
  return next;
};

const exists = (path: string): boolean => statSync(path, { throwIfNoEntry: false }) !== undefined;

const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** A restored element for an error message. */
const show = (element: unknown): string => {
  try {
    return JSON.stringify(element) ?? String(element);
  } catch {
    return String(element);
  }
};

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
  private seqState: OperatorListState<SeqWatermark> | undefined;
  /**
   * Watermarks of the old indices other than its own this subtask took over on restore: it
   * never writes under them, so they stay fixed, and every snapshot records them again.
   */
  private carried: SeqWatermark[] = [];
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
    let files: PartFile[] = [];
    this.io(this.dir, () => {
      mkdirSync(this.dir, { recursive: true });
      // Listed before recovery discards or retracts anything, so the next run never reuses
      // the name of a discarded file: a stale reference to it (from a checkpoint newer than
      // the one restored) then fails as lost data instead of committing unrelated output.
      // Race-free: after a restore only this subtask touches files named with the indices it
      // owns (see restoreOwner), its own among them.
      files = readdirSync(this.dir).flatMap((name) => parsePartFile(name) ?? []);
    });
    this.seq = nextFreeSeq(files, this.subtask);
    if (this.checkpointing) {
      const state = this.ctx.operatorState;
      this.pendingState = state.getListState<PendingPart>(PENDING_STATE, 'union');
      this.seqState = state.getListState<SeqWatermark>(SEQ_STATE, 'union');
      if (this.ctx.isRestored) {
        this.recover(files, this.pendingState.get(), this.seqState.get());
      }
      // The restored union lists hold every old subtask's elements, all handled by now; left
      // in place, each subtask would snapshot all of them again should snapshotState be skipped.
      this.pendingState.clear();
      this.seqState.clear();
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
    // After the seal, `seq` is the number of the next part: no file of this index numbered
    // `seq` or above exists yet, so every such file is output after this checkpoint. Also
    // recorded by the final checkpoint (snapshotState after finish).
    this.seqState?.update([{ subtask: this.subtask, nextSeq: this.seq }, ...this.carried]);
  }

  /**
   * Nothing to do: the parts of an aborted checkpoint stay pending under its id. The next
   * `snapshotState` stores them again (every uncommitted part is in {@link PENDING_STATE}) and
   * relabels only parts sealed since, so the next checkpoint to complete, which covers all
   * older ones, commits them (`notifyCheckpointComplete` commits every id at or below its
   * own), and a restore of it commits them too; a restore of an older checkpoint discards
   * them, and the source replays their records.
   */
  notifyCheckpointAborted(_checkpointId: number): void {}

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
   * Restore with checkpointing. For every old index it owns (see restoreOwner), in this order:
   * 1. retracts output committed after the restored checkpoint: deletes the visible parts
   *    numbered at or above the index's restored {@link SeqWatermark} (none without one);
   * 2. commits the pending parts of the restored checkpoint (a completed one, so all of them
   *    become visible);
   * 3. discards every other hidden file: output after the checkpoint, or of a checkpoint
   *    that never completed, which the source will replay.
   * `files` is the directory as listed at open, before this subtask changed anything.
   */
  private recover(
    files: readonly PartFile[],
    restoredPending: readonly unknown[],
    restoredSeq: readonly unknown[],
  ): void {
    const parallelism = this.ctx.subtask.parallelism;
    const owned = (index: number) => restoreOwner(index, parallelism) === this.subtask;
    const watermarks = this.parseWatermarks(restoredSeq);
    const parts = restoredPending.map((element) => this.parseRestored(element));
    const referenced = new Set<string>();
    for (const { part, oldSubtask, seq } of parts) {
      referenced.add(part.inProgress);
      const watermark = watermarks.get(oldSubtask);
      if (watermark !== undefined && seq >= watermark) {
        throw this.corrupt(
          PENDING_STATE,
          `pending part '${part.final}' is not below the checkpoint's next sequence number ` +
            `${watermark} for subtask index ${oldSubtask}`,
        );
      }
    }

    const rolledBack = this.ctx.metrics.counter('rolledBackFiles');
    this.io(this.dir, () => {
      for (const f of files) {
        if (!f.visible || !owned(f.index)) continue;
        const watermark = watermarks.get(f.index);
        if (watermark === undefined || f.seq < watermark) continue;
        unlinkSync(join(this.dir, f.name));
        rolledBack.inc();
      }
    });
    for (const { part, oldSubtask } of parts) if (owned(oldSubtask)) this.commit(part);
    this.io(this.dir, () => {
      for (const f of files) {
        if (f.visible || !owned(f.index) || referenced.has(f.name)) continue;
        unlinkSync(join(this.dir, f.name));
      }
    });
    syncDirectory(this.dir);

    // Numbering goes on after every part ever seen (retracted ones included, see open), and
    // never below the watermark even if files vanished: whatever this run writes under an
    // index is then at or above the restored watermark, so restoring the same checkpoint
    // again retracts it too.
    const indices = new Set<number>([
      ...watermarks.keys(),
      ...parts.map((p) => p.oldSubtask),
      ...files.map((f) => f.index),
    ]);
    const next = (index: number) => Math.max(nextFreeSeq(files, index), watermarks.get(index) ?? 0);
    this.seq = next(this.subtask);
    this.carried = [...indices]
      .filter((index) => index !== this.subtask && owned(index))
      .sort((a, b) => a - b)
      .map((index) => ({ subtask: index, nextSeq: next(index) }));
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

  private parseRestored(element: unknown): {
    part: PendingPart;
    oldSubtask: number;
    seq: number;
  } {
    if (typeof element === 'object' && element !== null) {
      const { checkpointId, inProgress, final } = element as Record<string, unknown>;
      const m = typeof final === 'string' ? PART_NAME.exec(final) : null;
      if (m !== null && inProgress === `.${final}.inprogress` && typeof checkpointId === 'number') {
        return {
          part: { checkpointId, inProgress, final: final as string },
          oldSubtask: Number(m[1]),
          seq: Number(m[2]),
        };
      }
    }
    throw this.corrupt(PENDING_STATE, `malformed element: ${show(element)}`);
  }

  /** The restored watermarks by index; an index without one is absent (older checkpoints). */
  private parseWatermarks(restored: readonly unknown[]): Map<number, number> {
    const byIndex = new Map<number, number>();
    for (const element of restored) {
      const { subtask, nextSeq } = (
        typeof element === 'object' && element !== null ? element : {}
      ) as Record<string, unknown>;
      if (!isIndex(subtask) || !isIndex(nextSeq)) {
        throw this.corrupt(SEQ_STATE, `malformed element: ${show(element)}`);
      }
      const seen = byIndex.get(subtask);
      if (seen !== undefined && seen !== nextSeq) {
        throw this.corrupt(
          SEQ_STATE,
          `conflicting next sequence numbers ${seen} and ${nextSeq} for subtask index ${subtask}`,
        );
      }
      byIndex.set(subtask, nextSeq);
    }
    return byIndex;
  }

  private corrupt(stateName: string, what: string): EddyError {
    return new EddyError(
      'EDDY_CHECKPOINT_CORRUPT',
      `file sink (${describeSubtask(this.ctx.subtask)}): restored state '${stateName}' ` +
        `holds a ${what}`,
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
