/**
 * Idempotent upsert into PostgreSQL: batched `INSERT … ON CONFLICT (key) DO UPDATE`, each
 * statement autocommitted. Everything written before a checkpoint barrier is written before
 * the checkpoint is acknowledged (`snapshotStateAsync` awaits it), so after a failure the job
 * replays only records after the restored checkpoint; writing them again sets the same rows
 * to the same values. The writes are at least once, the table's final state exactly once —
 * for a deterministic job whose records of one key reach one subtask (keyBy), in order.
 * (Between the failure and the end of the replay, readers may see rows newer than the
 * restored checkpoint; they converge.)
 *
 * Because the statements are idempotent, a batch whose connection is lost is simply sent
 * again after reconnecting (for up to `maxOutageMs`): whether or not the first try took
 * effect, the result is the same. Batches go one after another on one connection, so a
 * key's last value wins; within a batch only the last row of a key is kept (PostgreSQL
 * refuses to update one row twice in one statement).
 */
import type { ConnectorContext } from '../../runtime/io.js';
import { dedupeLastByKey, upsertSql } from './sql.js';
import { type PostgresSinkOptions, PostgresWriterBase } from './writer-base.js';

/** Options of `PostgresSink.upsert`. */
export interface PostgresUpsertOptions<T> extends PostgresSinkOptions<T> {
  /**
   * The conflict target: columns of a primary key or unique index of the table (exact
   * names, among `columns`).
   */
  key: string[];
}

/** The longest `abort` waits for the statement on the wire. */
const ABORT_WAIT_MS = 10_000;

export class UpsertWriter<T> extends PostgresWriterBase<T> {
  private readonly keyIndexes: number[];
  private readonly statements = new Map<number, string>();

  constructor(ctx: ConnectorContext, options: PostgresUpsertOptions<T>) {
    super(ctx, options, 'upsert');
    this.keyIndexes = options.key.map((k) => options.columns.indexOf(k));
  }

  protected queueBatch(rows: unknown[][]): void {
    const unique = dedupeLastByKey(rows, this.keyIndexes);
    if (unique.length === 0) return;
    const n = unique.length;
    let text = this.statements.get(n);
    if (text === undefined) {
      text = upsertSql(this.options, (this.options as PostgresUpsertOptions<T>).key, n);
      // Full batches repeat; the sizes of de-duplicated ones vary: cache only the full size.
      if (n === this.batchSize) this.statements.set(n, text);
    }
    const query = {
      name: n === this.batchSize ? `eddy_upsert_${n}` : undefined,
      text,
      values: unique.flat(),
    };
    this.chain.enqueue(async () => {
      // Idempotent, so sent again on a new connection when the old one was lost.
      await this.onData((c) => c.client.query(query));
      this.rowsWritten.inc(n);
    });
  }

  /** Queues the rows buffered so far; `snapshotStateAsync` awaits them. */
  snapshotState(_checkpointId: number): void {
    this.throwIfFailed();
    this.queueRest();
  }

  /** The checkpoint is acknowledged only once every row before its barrier is written. */
  async snapshotStateAsync(_checkpointId: number): Promise<void> {
    await this.waitQueue(0);
  }

  /**
   * Failure or cancellation. Hazard: a statement sent just before the connection closes still
   * runs on the server, and on a loaded machine it can run after the replay from the restored
   * checkpoint wrote newer rows, overwriting them with older ones. So the statement on the
   * wire finishes first (bounded: one stuck on a dead connection must not hold the failover).
   * A process killed outright cannot wait: that case stays at least once.
   */
  override async abort(): Promise<void> {
    await this.chain.stop(ABORT_WAIT_MS);
    await super.abort();
  }

  async finish(): Promise<void> {
    this.queueRest();
    await this.waitQueue(0);
    this.closed = true;
    await this.closeConnections();
  }

  protected override refusalFix(): string {
    const key = (this.options as PostgresUpsertOptions<T>).key.join(', ');
    return `${super.refusalFix()}; the key (${key}) must be the columns of a primary key or unique index`;
  }
}
