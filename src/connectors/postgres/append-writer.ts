/**
 * Exactly-once append into PostgreSQL by two-phase commit.
 *
 * With checkpointing, each subtask writes the rows between two checkpoints in one
 * transaction on its data connection: `BEGIN` before the first batch, multi-row INSERTs as
 * batches fill (never the whole checkpoint in memory). When the barrier of checkpoint `cp`
 * reaches the sink, `snapshotState(cp)` queues the last rows and `PREPARE TRANSACTION '<gid>'`
 * (gid.ts: `eddy:<prefix>:<uid>:<subtask>:<cp>`) and records the gid in the union list state
 * {@link PENDING_GIDS_STATE}; `snapshotStateAsync(cp)` awaits the PREPARE, so the checkpoint
 * is acknowledged only once the rows are durable on the server. `notifyCheckpointComplete(cp)`
 * runs `COMMIT PREPARED` for every pending gid of `cp` and older (an aborted checkpoint's
 * transaction stays prepared and is committed with the next completed one: its records are
 * covered by that checkpoint's source positions, so rolling it back would lose them).
 *
 * Restore (of checkpoint N, at any parallelism): the restored union state holds every gid
 * checkpoint N must make visible. Subtask 0 alone, in `open()`, lists this sink's prepared
 * transactions (`pg_prepared_xacts`, owner prefix, this database), commits those named in the
 * restored state and rolls back all others; a fresh start (no restored state) rolls back all
 * of them (leftovers of an earlier run nobody will commit). Why this is race-free:
 * - the job master sends `start` only after every subtask of the attempt has opened, so no
 *   subtask of the new attempt has written, let alone prepared, while subtask 0 cleans up:
 *   every prepared transaction it sees belongs to an earlier attempt or run;
 * - within a run, checkpoint ids keep growing across restarts, so the new attempt never
 *   reuses a gid of an earlier attempt; across runs (`--resume`, `--from-savepoint`) ids
 *   may restart at N+1, but the cleanup removed the old run's gids above N before that;
 * - the other subtasks do not depend on the cleanup (they only write after start).
 * Committing is idempotent: a gid of the restored state missing from `pg_prepared_xacts` was
 * committed before (by `notifyCheckpointComplete` before the failure, or an earlier restore).
 *
 * Failures: a lost connection while a transaction is open loses that transaction (the server
 * rolls it back), so the sink fails the attempt with retriable `EDDY_SINK_IO` and the job
 * replays from its latest checkpoint; a connection lost between transactions (after a
 * PREPARE, before the next BEGIN) is simply reconnected. COMMIT/ROLLBACK PREPARED are retried
 * across reconnects for up to `maxOutageMs` (idempotent, see above).
 *
 * Hazards:
 * - a prepared transaction keeps its locks (ROW EXCLUSIVE on the table: blocks DDL such as
 *   ALTER/TRUNCATE/VACUUM FULL) and its xid (holds back VACUUM's horizon) until committed or
 *   rolled back: a job that dies and is never restored leaves them behind. Find them with
 *   `SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'eddy:%'`; a restore or a fresh start of
 *   the same sink removes them. One can be left behind by a failed attempt too, in a narrow
 *   window: a PREPARE the server received from the failed attempt but completes only after
 *   the new attempt's subtask 0 listed the prepared transactions. It never collides with the
 *   new attempt's gids (higher checkpoint ids) and is rolled back by the next restore.
 * - the server needs `max_prepared_transactions` > 0 (checked at open), and at least
 *   parallelism × (checkpoints in flight + 1) for all such sinks together.
 * - the owner prefix must be unique among jobs writing to the same database at the same
 *   time: another job's sink with the same prefix and uid would roll back this job's
 *   prepared transactions on its restore.
 * - restoring a checkpoint older than the newest one committed (a fallback past a damaged
 *   checkpoint, an old savepoint) cannot retract rows already committed after it: the replay
 *   appends them again.
 *
 * Without checkpointing there is no two-phase commit: each batch is an autocommitted INSERT
 * (visible at once; a restart from scratch appends again).
 */
import { EddyError } from '../../core/errors.js';
import type { ConnectorContext, Counter } from '../../runtime/io.js';
import type { OperatorListState } from '../../state/types.js';
import { type Connection, pgError, sqlState, withReconnect } from './client.js';
import { checkGidLength, formatGid, gidOwnerPrefix, parseGid } from './gid.js';
import { insertSql, quoteLiteral } from './sql.js';
import { type PostgresSinkOptions, PostgresWriterBase } from './writer-base.js';

/** Options of `PostgresSink.append`. */
export interface PostgresAppendOptions<T> extends PostgresSinkOptions<T> {
  /**
   * Names this job in the sink's transaction ids (`eddy:<prefix>:<uid>:…`): must stay the same
   * across restarts and `--resume`/`--from-savepoint` (a restore finds the prepared
   * transactions of the previous run by it), and must differ between jobs that write to the
   * same database at the same time with the same sink uid. Default: the job's name.
   */
  transactionPrefix?: string;
}

/**
 * One element of the union list state {@link PENDING_GIDS_STATE}: a prepared transaction
 * that becomes visible when checkpoint `checkpointId` (or a later one) completes.
 *
 * @example
 * { checkpointId: 7, gid: 'eddy:events:pg-out:2:7' }
 */
export interface PendingTransaction {
  readonly checkpointId: number;
  readonly gid: string;
}

/**
 * Operator list state of {@link PendingTransaction}s, in `union` mode: after a restore at any
 * parallelism subtask 0 sees the gids of all old subtasks (and commits them).
 */
export const PENDING_GIDS_STATE = 'postgres-sink-pending';

/** SQLSTATE undefined_object: COMMIT/ROLLBACK PREPARED of a gid that is not prepared. */
const NO_SUCH_PREPARED = '42704';

export class AppendWriter<T> extends PostgresWriterBase<T> {
  private readonly checkpointing: boolean;
  private readonly owner: string;
  private readonly sql: (rows: number) => string;
  /** A transaction is open on the data connection (BEGIN queued, not yet prepared). */
  private txOpen = false;
  /** Prepared (or being prepared) and not yet committed, oldest first. */
  private pending: PendingTransaction[] = [];
  /** The PREPARE of each checkpoint this subtask snapshotted with rows, until awaited. */
  private readonly prepares = new Map<number, Promise<void>>();
  private pendingState: OperatorListState<PendingTransaction> | undefined;
  /** Input ended (`finish`): connections close once nothing is pending. */
  private finished = false;
  private fullBatchSql: string | undefined;
  private readonly committed: Counter;
  /** For COMMIT/ROLLBACK PREPARED and the restore's cleanup; opened when first needed. */
  private control: Connection | undefined;

  constructor(ctx: ConnectorContext, options: PostgresAppendOptions<T>) {
    super(ctx, options, 'append');
    this.checkpointing = ctx.checkpointing;
    this.owner = gidOwnerPrefix(options.transactionPrefix ?? ctx.jobName, ctx.subtask.operatorUid);
    checkGidLength(this.owner);
    this.sql = (rows) => insertSql(options, rows);
    this.committed = ctx.metrics.counter('transactionsCommitted');
  }

  protected override async openMode(): Promise<void> {
    if (!this.checkpointing) return;
    await this.checkPreparedTransactionsEnabled(this.data!);
    this.pendingState = this.ctx.operatorState.getListState<PendingTransaction>(
      PENDING_GIDS_STATE,
      'union',
    );
    const restored = this.ctx.isRestored ? this.pendingState.get().map((e) => this.parse(e)) : [];
    // Every subtask got the whole union list; subtask 0 handles it, and each subtask's next
    // snapshot stores only its own transactions.
    this.pendingState.clear();
    if (this.ctx.subtask.subtaskIndex === 0) await this.recover(restored);
  }

  protected queueBatch(rows: unknown[][]): void {
    if (rows.length === 0) return;
    const begin = this.checkpointing && !this.txOpen;
    if (begin) this.txOpen = true;
    const full = rows.length === this.batchSize;
    if (full) this.fullBatchSql ??= this.sql(rows.length);
    const query = {
      // A named statement is parsed once per connection: the full-size batch repeats.
      name: full ? `eddy_append_${rows.length}` : undefined,
      text: full ? this.fullBatchSql! : this.sql(rows.length),
      values: rows.flat(),
    };
    this.chain.enqueue(async () => {
      // No transaction is open before BEGIN, so a connection lost since the last PREPARE
      // is reconnected safely (nothing of the current checkpoint is lost).
      if (begin) await this.onData((c) => c.client.query('BEGIN'));
      // Without checkpointing each INSERT commits by itself: a connection closed meanwhile
      // (after a stop) is reopened. Inside a transaction `data` is the transaction's.
      const c = this.data ?? (await this.onData(async (c) => c));
      await c.client.query(query);
      this.rowsWritten.inc(rows.length);
    });
  }

  snapshotState(checkpointId: number): void {
    if (!this.checkpointing) return;
    this.throwIfFailed();
    this.queueRest();
    if (this.txOpen) {
      this.txOpen = false;
      const gid = formatGid(this.owner, this.ctx.subtask.subtaskIndex, checkpointId);
      this.pending.push({ checkpointId, gid });
      this.prepares.set(
        checkpointId,
        this.chain.enqueue(async () => {
          await this.data!.client.query(`PREPARE TRANSACTION ${quoteLiteral(gid)}`);
        }),
      );
    }
    this.pendingState?.update(this.pending);
  }

  /**
   * Awaits the PREPARE of `checkpointId`: the checkpoint is acknowledged only once its rows
   * are durable. A failure declines the checkpoint, and the chain's failure then fails the
   * attempt at the next flush (the transaction is gone; see the module comment).
   */
  async snapshotStateAsync(checkpointId: number): Promise<void> {
    const prepare = this.prepares.get(checkpointId);
    if (prepare === undefined) return;
    this.prepares.delete(checkpointId);
    try {
      await prepare;
    } catch (e) {
      throw pgError(this.where, `preparing the transaction of checkpoint ${checkpointId}`, e);
    }
  }

  /** Nothing: the aborted checkpoint's transaction stays prepared (see the module comment). */
  notifyCheckpointAborted(checkpointId: number): void {
    // Its PREPARE, if still running, is awaited by nobody now; its outcome reaches the
    // chain's failure all the same.
    this.prepares.delete(checkpointId);
  }

  async notifyCheckpointComplete(checkpointId: number): Promise<void> {
    const due = this.pending.filter((p) => p.checkpointId <= checkpointId);
    // Committed one by one, oldest first; one that fails stays pending: a retry (the next
    // completed checkpoint, or the restore after the attempt fails) commits it.
    for (const p of due) {
      await this.finishPrepared(p.gid, 'COMMIT');
      this.pending = this.pending.filter((q) => q.gid !== p.gid);
      this.committed.inc();
    }
    if ((this.finished || this.ctx.stopSignal.aborted) && this.idle()) {
      // Nothing more is expected; a late write would reconnect.
      await this.closeConnections();
    }
  }

  /**
   * With checkpointing: queues the last rows into the open transaction; the final checkpoint
   * prepares and commits it. Without: writes them (autocommit) and closes the connection.
   */
  async finish(): Promise<void> {
    this.queueRest();
    await this.waitQueue(0);
    this.finished = true;
    if (!this.checkpointing) {
      this.closed = true;
      await this.closeConnections();
    }
  }

  private idle(): boolean {
    return this.pending.length === 0 && !this.txOpen && this.chain.size === 0;
  }

  /**
   * COMMIT or ROLLBACK PREPARED of `gid`, on the control connection: both refuse to run
   * inside a transaction, and the data connection usually has one open. Idempotent across
   * reconnects: "does not exist" means an earlier try (or a restore) already finished it.
   */
  private async finishPrepared(gid: string, action: 'COMMIT' | 'ROLLBACK'): Promise<void> {
    try {
      const { connection } = await withReconnect(this.connectOptions, this.control, async (c) => {
        try {
          await c.client.query(`${action} PREPARED ${quoteLiteral(gid)}`);
        } catch (e) {
          if (sqlState(e) !== NO_SUCH_PREPARED) throw e;
        }
      });
      this.control = connection;
    } catch (e) {
      throw pgError(
        this.where,
        `${action} PREPARED '${gid}'`,
        e,
        'The user must be the one that prepared it, or a superuser',
      );
    }
  }

  protected override async closeConnections(): Promise<void> {
    const control = this.control;
    this.control = undefined;
    await control?.close();
    await super.closeConnections();
  }

  /**
   * Subtask 0 at open: commits the prepared transactions of the restored checkpoint and rolls
   * back every other prepared transaction of this sink (see the module comment for why no
   * transaction of the new attempt can be among them).
   */
  private async recover(restored: readonly PendingTransaction[]): Promise<void> {
    const keep = new Set(restored.map((p) => p.gid));
    let found: string[];
    try {
      const listed = await withReconnect(this.connectOptions, this.control, async (c) => {
        const r = await c.client.query(
          `SELECT gid FROM pg_prepared_xacts
            WHERE database = current_database() AND (left(gid, length($1)) = $1 OR gid = ANY($2))`,
          [this.owner, [...keep]],
        );
        return r.rows.map((row: { gid: string }) => row.gid);
      });
      this.control = listed.connection;
      found = listed.result;
    } catch (e) {
      throw pgError(this.where, 'listing prepared transactions (pg_prepared_xacts)', e);
    }
    const rolledBack = this.ctx.metrics.counter('preparedRolledBack');
    // Commits first (in checkpoint order), so the restored checkpoint's rows are visible even
    // if a rollback below fails and the attempt is retried.
    for (const p of [...restored].sort((a, b) => a.checkpointId - b.checkpointId)) {
      if (!found.includes(p.gid)) continue; // committed before
      await this.finishPrepared(p.gid, 'COMMIT');
      this.committed.inc();
    }
    for (const gid of found) {
      if (keep.has(gid) || parseGid(this.owner, gid) === undefined) continue;
      await this.finishPrepared(gid, 'ROLLBACK');
      rolledBack.inc();
    }
  }

  private async checkPreparedTransactionsEnabled(c: Connection): Promise<void> {
    let value: number;
    try {
      const r = await c.client.query('SHOW max_prepared_transactions');
      value = Number(r.rows[0].max_prepared_transactions);
    } catch (e) {
      throw pgError(this.where, 'reading max_prepared_transactions', e);
    }
    if (value > 0) return;
    throw new EddyError(
      'EDDY_CONNECTOR_CONFIG',
      `${this.where.who} at ${this.where.server}: the server has max_prepared_transactions = ` +
        `${value}, so it cannot PREPARE TRANSACTION, which exactly-once append needs. Set ` +
        'max_prepared_transactions in postgresql.conf (at least the sink parallelism × ' +
        '(checkpoints in flight + 1), e.g. 64) and restart the server; or use ' +
        'PostgresSink.upsert, or run without checkpointing',
      { domain: 'external' },
    );
  }

  private parse(element: unknown): PendingTransaction {
    const { checkpointId, gid } = (
      typeof element === 'object' && element !== null ? element : {}
    ) as Record<string, unknown>;
    if (typeof gid === 'string' && gid !== '' && Number.isSafeInteger(checkpointId)) {
      return { checkpointId: checkpointId as number, gid };
    }
    throw new EddyError(
      'EDDY_CHECKPOINT_CORRUPT',
      `${this.where.who}: restored state '${PENDING_GIDS_STATE}' holds a malformed element: ` +
        `${JSON.stringify(element)}`,
    );
  }
}
