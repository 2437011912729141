/**
 * Redis Streams sink, exactly once with checkpoints (two-phase commit, as the file sink).
 *
 * - `write` serializes a record into its stream's entry fields and buffers it (no I/O).
 * - `snapshotState(cp)` seals the buffer as checkpoint `cp`'s pending output, in chunks
 *   (at most `commitEntries` entries / about `commitBytes` each), and stores every pending
 *   chunk in operator list state ({@link REDIS_SINK_PENDING_STATE}): a checkpoint holds the
 *   output it covers that is not committed yet.
 * - `notifyCheckpointComplete(cp)` commits the chunks of `cp` and older, in order, each with
 *   one atomic Lua script that writes its entries (XADD) and advances the commit marker (see
 *   `commit.ts`); a replayed commit writes nothing. Aborted checkpoints change nothing: their
 *   chunks stay pending and the next completed checkpoint commits them.
 * - On restore, the restored checkpoint completed, but its commit may not have happened (the
 *   job died between the checkpoint and the notification): its pending chunks are committed
 *   in `open`, and the marker makes that a no-op when they were.
 *
 * Why chunks, not one transaction per checkpoint: a script blocks the whole server while it
 * runs, and a checkpoint's output is unbounded. Each chunk is atomic and idempotent on its
 * own, so a reader may see a checkpoint's output appear chunk by chunk, but every entry
 * appears exactly once.
 *
 * The marker, and why it survives rescaling. The marker is keyed by a *writer id*, not by the
 * subtask index: each subtask draws a fresh random writer id (`<subtask>-<random>`) every
 * time it opens (every attempt, restore or rescale), and every pending chunk carries the
 * writer id that produced it. The state holds one element per writer id with all its chunks,
 * in `split` mode, so after a restore at any parallelism all chunks of one old writer land
 * on one new subtask, which commits them in order under the OLD writer id's marker field;
 * its own new output goes under its new writer id. So subtask indexes changing meaning
 * across a rescale cannot make one writer's marker skip another writer's output, and two
 * jobs restored from the same savepoint (a fork) commit the savepoint's pending output once
 * between them and then each its own output. Checkpoint ids alone would not do: a fork, or a
 * fallback to an older checkpoint, reuses ids that a marker has passed, and would lose output.
 *
 * Hazards:
 * - The marker hash gains one field per subtask per attempt; they are small, and kept
 *   because a retained checkpoint or savepoint may still be restored and must find them.
 *   Fields of writers older than every checkpoint/savepoint you may restore can be deleted
 *   (HDEL) by hand.
 * - Restoring a checkpoint older than output already committed (a fallback past a corrupt
 *   checkpoint) writes the output after it again (the file sink retracts it instead; Redis
 *   entries are not retracted): at least once in that case.
 * - Durability of committed entries is the server's (AOF/RDB settings).
 * - Without checkpointing, buffered output is written at every flush (batch) with the same
 *   script: a restart replays from the start, so that mode is at least once.
 */
import { randomBytes } from 'node:crypto';
import { describeSubtask, EddyError, InvalidArgumentError } from '../../core/errors.js';
import type { ConnectorContext, Counter, Sink, SinkWriter } from '../../runtime/io.js';
import type { OperatorListState } from '../../state/types.js';
import { ChunkBuilder, defineCommit, type PendingChunk, runCommit } from './commit.js';
import {
  DEFAULT_MAX_OUTAGE_MS,
  ioredis,
  RedisConnection,
  validateOutage,
  validateUrl,
} from './connection.js';

/** Operator list state (`split` mode) holding one {@link RedisSinkPending} per writer id. */
export const REDIS_SINK_PENDING_STATE = 'redis-sink-pending';

/** The uncommitted output of one writer id, as stored in operator state. */
export interface RedisSinkPending {
  writer: string;
  chunks: PendingChunk[];
}

/** Options of {@link RedisStreamSink.of}. */
export interface RedisStreamSinkOptions<T> {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  url: string;
  /** The stream key, or a function choosing it per record. */
  stream: string | ((record: T) => string);
  /** A record to entry fields. Default `{ data: JSON.stringify(record) }`. */
  serialize?: (record: T) => Record<string, string>;
  /**
   * How long an unreachable server is waited for (retrying with back-off) before the job
   * fails with a retriable EDDY_SINK_IO (default 30 000 ms).
   */
  maxOutageMs?: number;
  /** Hash holding the commit markers (default `eddy:sink:<operator uid>`). */
  markerKey?: string;
  /** Most entries per atomic commit (default 1000). */
  commitEntries?: number;
  /** About this many characters of fields per atomic commit at most (default 1 Mi). */
  commitBytes?: number;
}

const positiveInt = (v: unknown, what: string): void => {
  if (v !== undefined && !(Number.isSafeInteger(v) && (v as number) > 0)) {
    throw new InvalidArgumentError(
      `redis stream sink: ${what} must be a positive integer, got ${v}`,
    );
  }
};

const validateOptions = <T>(o: RedisStreamSinkOptions<T>): void => {
  const what = 'redis stream sink';
  validateUrl(o.url, what);
  const s = o.stream;
  if (!((typeof s === 'string' && s !== '') || typeof s === 'function')) {
    throw new InvalidArgumentError(`${what}: stream must be a non-empty key or a function`);
  }
  if (o.serialize !== undefined && typeof o.serialize !== 'function') {
    throw new InvalidArgumentError(`${what}: serialize must be a function`);
  }
  if (o.markerKey !== undefined && (typeof o.markerKey !== 'string' || o.markerKey === '')) {
    throw new InvalidArgumentError(`${what}: markerKey must be a non-empty string`);
  }
  validateOutage(o.maxOutageMs, what);
  positiveInt(o.commitEntries, 'commitEntries');
  positiveInt(o.commitBytes, 'commitBytes');
};

/**
 * Redis Streams sink factory.
 *
 * @example
 * totals.sinkTo(RedisStreamSink.of<Total>({ url: 'redis://127.0.0.1:6379', stream: 'totals' }));
 */
export const RedisStreamSink = {
  /** Appends each record as one entry (XADD), exactly once with checkpoints. */
  of<T>(options: RedisStreamSinkOptions<T>): Sink<T> {
    validateOptions(options);
    return {
      defaultName: 'redis-stream-sink',
      createWriter: (ctx) => new RedisStreamWriter<T>(ctx, options),
    };
  },
};

const isChunk = (c: unknown): c is PendingChunk => {
  const k = c as Partial<PendingChunk> | null;
  return (
    k !== null &&
    typeof k === 'object' &&
    Number.isSafeInteger(k.checkpointId) &&
    Number.isSafeInteger(k.chunk) &&
    Number.isSafeInteger(k.count) &&
    Array.isArray(k.streams) &&
    k.streams.every((s) => typeof s === 'string') &&
    Array.isArray(k.entries)
  );
};

class RedisStreamWriter<T> implements SinkWriter<T> {
  private conn: RedisConnection | undefined;
  private state: OperatorListState<RedisSinkPending> | undefined;
  private readonly builder: ChunkBuilder;
  /** This attempt's writer id: `<subtask>-<random>`. */
  private readonly writer: string;
  /** Sealed chunks not committed yet, oldest first (checkpointing). */
  private pending: PendingChunk[] = [];
  /** Without checkpointing: the next chunk number (marker `0:<chunk>`). */
  private nextChunk = 0;
  private finished = false;
  private closed = false;
  private readonly owner: string;
  private readonly markerKey: string;
  private readonly entriesWritten: Counter;
  private readonly commitsSkipped: Counter;
  private readonly streamOf: (record: T) => string;
  private readonly fieldsOf: (record: T) => [string[], number];

  constructor(
    private readonly ctx: ConnectorContext,
    private readonly options: RedisStreamSinkOptions<T>,
  ) {
    this.owner = `redis stream sink (${describeSubtask(ctx.subtask)})`;
    this.markerKey = options.markerKey ?? `eddy:sink:${ctx.subtask.operatorUid}`;
    this.writer = `${ctx.subtask.subtaskIndex}-${randomBytes(6).toString('hex')}`;
    this.builder = new ChunkBuilder(options.commitEntries ?? 1000, options.commitBytes ?? 1 << 20);
    this.entriesWritten = ctx.metrics.counter('entriesWritten');
    this.commitsSkipped = ctx.metrics.counter('commitsSkipped');
    const stream = options.stream;
    this.streamOf = typeof stream === 'string' ? () => stream : stream;
    this.fieldsOf = options.serialize === undefined ? defaultFields : userFields(options.serialize);
  }

  async open(): Promise<void> {
    await ioredis.load();
    const conn = new RedisConnection({
      url: this.options.url,
      role: 'sink',
      owner: this.owner,
      maxOutageMs: this.options.maxOutageMs ?? DEFAULT_MAX_OUTAGE_MS,
    });
    this.conn = conn;
    defineCommit(conn.client);
    await conn.retrying('PING', undefined, (c) => c.ping());
    const stream = this.options.stream;
    if (typeof stream === 'string') await this.checkStreamType(stream);
    if (!this.ctx.checkpointing) return;
    this.state = this.ctx.operatorState.getListState<RedisSinkPending>(
      REDIS_SINK_PENDING_STATE,
      'split',
    );
    if (this.ctx.isRestored) {
      for (const element of this.state.get()) {
        const { writer, chunks } = this.parseRestored(element);
        for (const chunk of chunks) await this.commit(writer, chunk);
      }
    }
    // All restored output is committed: left in place, a skipped snapshot would store it again.
    this.state.clear();
  }

  /** Refusal at start: a key that exists and is not a stream. */
  private async checkStreamType(key: string): Promise<void> {
    const type = await this.conn!.retrying('TYPE', key, (c) => c.type(key));
    if (type !== 'stream' && type !== 'none') {
      const e = Object.assign(new Error(`WRONGTYPE key '${key}' holds a ${type}, not a stream`), {
        name: 'ReplyError',
      });
      throw this.conn!.error('writing to the stream', key, e);
    }
  }

  write(record: T): void {
    if (this.closed || this.finished) throw this.stateError();
    let stream: string;
    let fields: string[];
    let bytes: number;
    try {
      stream = this.streamOf(record);
      [fields, bytes] = this.fieldsOf(record);
    } catch (e) {
      throw this.encodeError((e as Error).message, e);
    }
    if (typeof stream !== 'string' || stream === '') {
      throw this.encodeError(`the stream function returned ${JSON.stringify(stream)}, not a key`);
    }
    this.builder.add(stream, fields, bytes);
  }

  /** Without checkpointing, writes what was buffered (awaited: backpressure). */
  async flush(): Promise<void> {
    if (this.ctx.checkpointing || this.builder.size === 0) return;
    const chunks = this.builder.take(0, this.nextChunk);
    this.nextChunk += chunks.length;
    for (const chunk of chunks) await this.commit(this.writer, chunk);
  }

  /**
   * Without checkpointing, writes the rest now. With checkpointing, the rest is sealed by the
   * final checkpoint's `snapshotState` and committed when it completes.
   */
  async finish(): Promise<void> {
    await this.flush();
    this.finished = true;
    if (!this.ctx.checkpointing) this.release();
  }

  async abort(): Promise<void> {
    this.builder.clear();
    this.closed = true;
    this.release();
  }

  snapshotState(checkpointId: number): void {
    if (!this.ctx.checkpointing) return;
    for (const chunk of this.builder.take(checkpointId)) this.pending.push(chunk);
    this.state?.update(
      this.pending.length === 0 ? [] : [{ writer: this.writer, chunks: [...this.pending] }],
    );
  }

  /** Nothing: the chunks stay pending and the next completed checkpoint commits them. */
  notifyCheckpointAborted(_checkpointId: number): void {}

  async notifyCheckpointComplete(checkpointId: number): Promise<void> {
    // Pending is in checkpoint order and only grows at its end meanwhile (a snapshot may run
    // while this awaits), so the due chunks are a prefix.
    const due = this.pending.filter((c) => c.checkpointId <= checkpointId);
    for (const chunk of due) {
      await this.commit(this.writer, chunk);
      this.pending.splice(this.pending.indexOf(chunk), 1);
    }
    // The last commit of a finished or stopped job: release the connection now rather than at
    // the subtask's close, which waits for the job's other subtasks. A later commit would
    // connect again.
    const last = this.finished || this.ctx.stopSignal.aborted;
    if (last && this.pending.length === 0) this.release();
  }

  /** Commits one chunk, waiting out an outage (safe to repeat: see commit.ts). */
  private async commit(writer: string, chunk: PendingChunk): Promise<void> {
    const written = await this.connection().retrying('commit', undefined, (c) =>
      runCommit(c, this.markerKey, writer, chunk),
    );
    if (written) this.entriesWritten.inc(chunk.count);
    else this.commitsSkipped.inc();
  }

  /** The connection, opened again if released (e.g. a commit after finish). */
  private connection(): RedisConnection {
    if (this.conn === undefined) {
      this.conn = new RedisConnection({
        url: this.options.url,
        role: 'sink',
        owner: this.owner,
        maxOutageMs: this.options.maxOutageMs ?? DEFAULT_MAX_OUTAGE_MS,
      });
      defineCommit(this.conn.client);
    }
    return this.conn;
  }

  /** The subtask ended normally: releases the connection if a commit has not already. */
  async close(): Promise<void> {
    this.release();
  }

  private release(): void {
    this.conn?.close();
    this.conn = undefined;
  }

  private parseRestored(element: unknown): RedisSinkPending {
    const e = element as Partial<RedisSinkPending> | null;
    if (
      e === null ||
      typeof e !== 'object' ||
      typeof e.writer !== 'string' ||
      !Array.isArray(e.chunks) ||
      !e.chunks.every(isChunk)
    ) {
      throw new EddyError(
        'EDDY_CHECKPOINT_CORRUPT',
        `${this.owner}: restored state '${REDIS_SINK_PENDING_STATE}' holds a malformed element`,
      );
    }
    return { writer: e.writer, chunks: e.chunks };
  }

  private encodeError(reason: string, cause?: unknown): EddyError {
    return new EddyError('EDDY_SINK_IO', `${this.owner} cannot encode a record: ${reason}`, {
      domain: 'user',
      retriable: false,
      cause,
    });
  }

  private stateError(): EddyError {
    return new EddyError('EDDY_INTERNAL', `${this.owner}: write after finish or abort`);
  }
}

/** Most fields of one entry. */
const MAX_FIELDS = 1000;

/** The default fields: `data` = the record as JSON. */
const defaultFields = (record: unknown): [string[], number] => {
  const json = JSON.stringify(record);
  if (json === undefined) throw new Error(`${typeof record} has no JSON form`);
  return [['data', json], json.length + 4];
};

/** Fields from the user's serialize: string values, at least one field. */
const userFields =
  <T>(serialize: (record: T) => Record<string, string>) =>
  (record: T): [string[], number] => {
    const o = serialize(record);
    const fields: string[] = [];
    let bytes = 0;
    for (const name in o) {
      const value = o[name];
      if (typeof value !== 'string') {
        throw new Error(`serialize returned a ${typeof value} for field '${name}' (strings only)`);
      }
      fields.push(name, value);
      bytes += name.length + value.length;
    }
    if (fields.length === 0) throw new Error('serialize returned no fields (XADD needs one)');
    // The commit script passes an entry's fields to XADD with Lua's unpack, which takes at
    // most ~8000 values.
    if (fields.length > 2 * MAX_FIELDS) {
      throw new Error(`serialize returned ${fields.length / 2} fields (at most ${MAX_FIELDS})`);
    }
    return [fields, bytes];
  };
