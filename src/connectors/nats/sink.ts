/**
 * NATS JetStream sink, exactly once with checkpointing, by a write-ahead log in the checkpoint
 * and JetStream's message deduplication:
 *
 * - `write` serializes each record into the current batch (no I/O).
 * - `snapshotState(cp)` seals the current batch for checkpoint `cp` and stores every batch not
 *   yet published in operator list state ({@link NATS_SINK_PENDING}, `split` mode).
 * - `notifyCheckpointComplete(cp)` publishes the batches of `cp` and older, in order, each
 *   message with a `Nats-Msg-Id` derived from (writer lineage, sink uid, subtask, checkpoint
 *   id, index in the batch: see `msg-id.ts`), awaits every PubAck, then forgets them.
 * - A restore publishes the restored batches again with the same ids: those published before
 *   the failure are dropped by the stream as duplicates, the rest are stored. The source
 *   replays everything after the checkpoint, which is sealed into new batches.
 *
 * Why not publish right away and await the PubAcks before the checkpoint completes? The ids
 * of replayed records would then have to be the same as before the failure, which needs the
 * records to reach the sink in the same order after a restore; across several input channels
 * or a rescale they do not, and a replayed record could take the id of a different one already
 * published and be dropped: data loss. Here ids name stored batches, never replayed records.
 *
 * Costs and hazards:
 * - Output becomes visible when the checkpoint covering it completes (as the file sink), and
 *   a checkpoint interval's records per subtask are held in memory and in the checkpoint.
 * - Deduplication only works within the stream's duplicate window (`duplicate_window`,
 *   default 2 minutes): restoring a checkpoint (or savepoint) more than that after its
 *   batches were published publishes them again. Make the window longer than the time a
 *   failed job needs to restart, or accept duplicates of one checkpoint interval then.
 * - A message whose publish failed and is retried may land after messages published after it
 *   (the others of its window of {@link NatsSinkOptions.publishWindow} were not held back).
 *
 * Without checkpointing, each batch of records is published at `flush` (between batches) and
 * its PubAcks awaited: no replay happens, so no more is needed.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { JetStreamManager } from '@nats-io/jetstream';
import { describeSubtask, EddyError, InvalidArgumentError } from '../../core/errors.js';
import type { ConnectorContext, Counter, Sink, SinkWriter } from '../../runtime/io.js';
import type { OperatorListState } from '../../state/types.js';
import { backoffMs, type NatsConnectionSettings, type NatsLink, openLink } from './connection.js';
import { API_TIMEOUT_MS } from './enumerator.js';
import { configError, describeServers, ioError, isJetStreamDisabled, reason } from './errors.js';
import { natsJetStream } from './libs.js';
import { msgIdPrefix, natsMsgId } from './msg-id.js';
import { type PublishFailure, WindowPublisher } from './publisher.js';
import { isWildcard, subjectProblem } from './subjects.js';

/** Name of the operator list state holding the batches not yet published. */
export const NATS_SINK_PENDING = 'nats-sink-pending';

/** A sealed batch waiting for its checkpoint to complete (one element of the pending state). */
export interface NatsPendingBatch {
  /** `<lineage>:<uid>:<subtask>` of the writer that sealed it (see `msg-id.ts`). */
  prefix: string;
  checkpointId: number;
  subjects: string[];
  payloads: Uint8Array[];
}

/** Options of {@link NatsSink.of}. */
export interface NatsSinkOptions<T> extends NatsConnectionSettings {
  /** The subject to publish to, or a function of the record. A stream must capture it. */
  subject: string | ((record: T) => string);
  /** Turns a record into the payload (default: UTF-8 JSON). */
  serialize?: (record: T) => Uint8Array;
  /** Messages published before their PubAcks are awaited together (default 1024). */
  publishWindow?: number;
}

const DEFAULT_WINDOW = 1024;
/** Timeout of one publish attempt while the server is away. */
const OUTAGE_ATTEMPT_MS = 1000;
const utf8 = new TextEncoder();

const validate = <T>(o: NatsSinkOptions<T>): void => {
  const servers = typeof o.servers === 'string' ? [o.servers] : o.servers;
  if (!Array.isArray(servers) || servers.length === 0 || servers.some((s) => s === '')) {
    throw new InvalidArgumentError('nats sink: `servers` must be a URL or a non-empty list');
  }
  if (typeof o.subject === 'string') {
    const problem =
      subjectProblem(o.subject) ?? (isWildcard(o.subject) ? 'it has a wildcard' : undefined);
    if (problem !== undefined) {
      throw new InvalidArgumentError(
        `nats sink: subject ${JSON.stringify(o.subject)} is invalid: ${problem}`,
      );
    }
  } else if (typeof o.subject !== 'function') {
    throw new InvalidArgumentError(
      'nats sink: `subject` must be a subject or a function of the record',
    );
  }
  for (const [name, v] of [
    ['publishWindow', o.publishWindow],
    ['maxOutageMs', o.maxOutageMs],
  ] as const) {
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= (name === 'maxOutageMs' ? 0 : 1))) {
      throw new InvalidArgumentError(`nats sink: ${name} must be a positive integer, got ${v}`);
    }
  }
};

/**
 * Factory for NATS JetStream sinks.
 *
 * @example
 * stream.sinkTo(NatsSink.of({ servers: 'nats://127.0.0.1:4222', subject: (o) => `totals.${o.region}` }));
 */
export const NatsSink = {
  /** A sink publishing every record to JetStream (see {@link NatsSinkOptions}). */
  of<T>(options: NatsSinkOptions<T>): Sink<T> {
    validate(options);
    return { defaultName: 'nats-sink', createWriter: (ctx) => new NatsSinkWriter<T>(ctx, options) };
  },
};

const checkBatch = (e: unknown): NatsPendingBatch => {
  const b = e as Partial<NatsPendingBatch> | null;
  const ok =
    b !== null &&
    typeof b === 'object' &&
    typeof b.prefix === 'string' &&
    Number.isSafeInteger(b.checkpointId) &&
    Array.isArray(b.subjects) &&
    Array.isArray(b.payloads) &&
    b.subjects.length === b.payloads.length &&
    b.subjects.every((s) => typeof s === 'string') &&
    b.payloads.every((p) => p instanceof Uint8Array);
  if (!ok) {
    throw new EddyError(
      'EDDY_STATE',
      `nats sink: restored '${NATS_SINK_PENDING}' element is not a batch of messages`,
    );
  }
  return b as NatsPendingBatch;
};

class NatsSinkWriter<T> implements SinkWriter<T> {
  private link: NatsLink | undefined;
  private publisher: WindowPublisher | undefined;
  private jsm!: JetStreamManager;
  private readonly prefix: string;
  private subjects: string[] = [];
  private payloads: Uint8Array[] = [];
  /** Sealed batches not yet published, oldest first (checkpointing only). */
  private pending: NatsPendingBatch[] = [];
  private state: OperatorListState<NatsPendingBatch> | undefined;
  /** Without checkpointing: index of the next message (ids `<prefix>:0:<index>`). */
  private sent = 0;
  private finished = false;
  private aborted = false;
  private readonly published: Counter;
  private readonly duplicates: Counter;

  constructor(
    private readonly ctx: ConnectorContext,
    private readonly options: NatsSinkOptions<T>,
  ) {
    this.prefix = msgIdPrefix(randomUUID(), ctx.subtask.operatorUid, ctx.subtask.subtaskIndex);
    this.published = ctx.metrics.counter('messagesPublished');
    this.duplicates = ctx.metrics.counter('duplicatesDropped');
  }

  async open(): Promise<void> {
    await this.connect();
    if (typeof this.options.subject === 'string') {
      try {
        await this.checkCaptured(this.options.subject);
      } catch (e) {
        await this.close();
        throw e instanceof EddyError
          ? e
          : ioError('sink', describeServers(this.options.servers), 'cannot reach JetStream', e);
      }
    }
    if (!this.ctx.checkpointing) return;
    this.state = this.ctx.operatorState.getListState<NatsPendingBatch>(NATS_SINK_PENDING, 'split');
    if (this.ctx.isRestored) {
      // Batches of the restored checkpoint (complete) and older: published or not, publish
      // them (again: the stream drops what it has already, within its duplicate window).
      const restored = this.state.get().map(checkBatch);
      for (const batch of restored) await this.publishBatch(batch, 0);
    }
    this.state.clear();
  }

  /**
   * Opens the connection (again, after an idle close: see `notifyCheckpointComplete`). Not
   * after `abort`: a failed writer publishes nothing more.
   */
  private async connect(): Promise<NatsLink> {
    if (this.link !== undefined) return this.link;
    if (this.aborted) {
      throw new EddyError('EDDY_INTERNAL', `nats sink (${this.describe()}): publish after abort`);
    }
    const link = await openLink(this.options, 'sink', this.ctx.stopSignal);
    try {
      this.jsm = await natsJetStream.get().jetstreamManager(link.nc, { timeout: API_TIMEOUT_MS });
    } catch (e) {
      await link.close();
      if (isJetStreamDisabled(e)) {
        throw configError(
          'sink',
          link.server,
          'does not run JetStream',
          'start nats-server with -js',
          e,
        );
      }
      throw ioError('sink', link.server, 'cannot reach JetStream', e);
    }
    this.link = link;
    this.publisher = new WindowPublisher(link.nc);
    return link;
  }

  /** Refuses at start a subject no stream captures (publishes would go nowhere). */
  private async checkCaptured(subject: string): Promise<void> {
    try {
      await this.jsm.streams.find(subject);
    } catch (e) {
      if (!/no stream matches/i.test(reason(e))) throw e;
      throw configError(
        'sink',
        this.link!.server,
        `has no stream capturing subject '${subject}'`,
        'create a stream with this subject (e.g. `nats stream add --subjects`) or fix `subject`',
        e,
      );
    }
  }

  write(record: T): void {
    if (this.finished) {
      throw new EddyError(
        'EDDY_INTERNAL',
        `nats sink (${this.describe()}): write after finish or abort`,
      );
    }
    const o = this.options;
    let subject: string;
    let data: Uint8Array;
    try {
      subject = typeof o.subject === 'string' ? o.subject : o.subject(record);
      data = o.serialize === undefined ? utf8.encode(JSON.stringify(record)) : o.serialize(record);
    } catch (e) {
      throw new EddyError(
        'EDDY_SINK_IO',
        `nats sink (${this.describe()}) cannot serialize a record: ${reason(e)}`,
        { domain: 'user', cause: e },
      );
    }
    this.subjects.push(subject);
    this.payloads.push(data);
  }

  /** Without checkpointing: publishes the batch and awaits its acks (backpressure). */
  async flush(): Promise<void> {
    if (this.ctx.checkpointing || this.subjects.length === 0) return;
    const batch = this.seal(0);
    await this.publishBatch(batch, this.sent);
    this.sent += batch.subjects.length;
  }

  /**
   * Without checkpointing: publishes what is left. With: nothing to do; the final checkpoint's
   * `snapshotState` seals the rest and its completion publishes it.
   */
  async finish(): Promise<void> {
    await this.flush();
    this.finished = true;
    if (!this.ctx.checkpointing) await this.close();
  }

  /** Drops unsealed records (the source replays them) and disconnects; sealed batches stay in state. */
  async abort(): Promise<void> {
    this.finished = true;
    this.aborted = true;
    this.subjects = [];
    this.payloads = [];
    await this.close();
  }

  /** Releases the connection (also after the final commit of a finished writer). */
  async close(): Promise<void> {
    const link = this.link;
    this.link = undefined;
    this.publisher?.close();
    this.publisher = undefined;
    await link?.close();
  }

  snapshotState(checkpointId: number): void {
    if (!this.ctx.checkpointing) return;
    if (this.subjects.length > 0) this.pending.push(this.seal(checkpointId));
    // A copy: the state backend may keep the list it is given, and ours keeps changing.
    this.state?.update([...this.pending]);
  }

  /** The batches stay pending under their ids; the next completed checkpoint publishes them. */
  notifyCheckpointAborted(_checkpointId: number): void {}

  async notifyCheckpointComplete(checkpointId: number): Promise<void> {
    const due = this.pending.filter((b) => b.checkpointId <= checkpointId);
    for (const batch of due) {
      await this.publishBatch(batch, 0);
      // Published: forgotten from now on (a later snapshot no longer stores it).
      this.pending = this.pending.filter((b) => b !== batch);
    }
    // Finished or stopped, and nothing left: release the connection now rather than at the
    // subtask's close, which waits for the job's other subtasks. Records still in flight
    // after a stop are sealed by the final checkpoint, whose completion reconnects (`connect`).
    const ending = this.finished || this.ctx.stopSignal.aborted;
    if (ending && this.pending.length === 0 && this.subjects.length === 0) await this.close();
  }

  private seal(checkpointId: number): NatsPendingBatch {
    const batch = {
      prefix: this.prefix,
      checkpointId,
      subjects: this.subjects,
      payloads: this.payloads,
    };
    this.subjects = [];
    this.payloads = [];
    return batch;
  }

  /**
   * Publishes `batch` in windows of `publishWindow` messages, awaiting each window's PubAcks;
   * message `k` gets id `natsMsgId(prefix, checkpointId, base + k)`. Messages of a window that
   * failed (no answer, server away) are published again, same ids, with backoff, until
   * `maxOutageMs`; a refusal (no stream for the subject, no permission, the stream's own
   * refusal) fails at once.
   */
  private async publishBatch(batch: NatsPendingBatch, base: number): Promise<void> {
    const link = await this.connect();
    const window = this.options.publishWindow ?? DEFAULT_WINDOW;
    const n = batch.subjects.length;
    for (let from = 0; from < n; from += window) {
      let todo: number[] = [];
      for (let k = from; k < Math.min(n, from + window); k++) todo.push(k);
      for (let attempt = 0; todo.length > 0; attempt++) {
        if (this.link !== link) {
          throw new EddyError(
            'EDDY_INTERNAL',
            `nats sink (${this.describe()}): publish after close`,
          );
        }
        const messages = todo.map((k) => ({
          subject: batch.subjects[k]!,
          data: batch.payloads[k]!,
          msgId: natsMsgId(batch.prefix, batch.checkpointId, base + k),
        }));
        const results = await this.publisher!.publish(messages, this.attemptTimeout(link));
        const failed: number[] = [];
        let failure: PublishFailure | undefined;
        results.forEach((r, j) => {
          if (r.ok) (r.duplicate ? this.duplicates : this.published).inc();
          else {
            failed.push(todo[j]!);
            failure ??= r.error;
          }
        });
        if (failed.length < todo.length) link.outage.ok();
        if (failure !== undefined) {
          const subject = batch.subjects[failed[0]!]!;
          await this.afterFailure(link, subject, failure);
          await delay(backoffMs(attempt));
        }
        todo = failed;
      }
    }
  }

  /**
   * While the server is away, short attempts: a publish buffered by the client across the
   * reconnect may never be answered, and the outage limit should hold roughly.
   */
  private attemptTimeout(link: NatsLink): number {
    return Math.min(
      link.outage.active ? OUTAGE_ATTEMPT_MS : API_TIMEOUT_MS,
      Math.max(250, link.outage.maxMs),
    );
  }

  /** Throws when a failed publish cannot be fixed by retrying, or the outage lasts too long. */
  private async afterFailure(link: NatsLink, subject: string, f: PublishFailure): Promise<void> {
    const server = link.server;
    if (link.permissionError !== undefined) {
      throw configError(
        'sink',
        server,
        `refused publishing to '${subject}' (${reason(link.permissionError)})`,
        'grant the user publish permission on it',
        link.permissionError,
      );
    }
    if (f.kind === 'refused' && !/insufficient resources|temporar/i.test(f.message)) {
      throw configError(
        'sink',
        server,
        `refused a message on '${subject}': ${f.message}`,
        "fix the stream's limits (max message size, max messages with discard new) or the records",
      );
    }
    // Nobody answers while connected: is there a stream for the subject at all?
    if (f.kind === 'no-responders' && !link.outage.active) await this.checkCaptured(subject);
    link.outage.fail();
    if (link.outage.exceeded) {
      throw ioError(
        'sink',
        server,
        `cannot publish to '${subject}' for ${Math.round(link.outage.elapsedMs)} ms (maxOutageMs ${link.outage.maxMs}): ${f.message}`,
      );
    }
  }

  private describe(): string {
    return describeSubtask(this.ctx.subtask);
  }
}
