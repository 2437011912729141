/**
 * PostgreSQL sinks: exactly-once append by two-phase commit (`PREPARE TRANSACTION` per
 * checkpoint and subtask, see append-writer.ts) and idempotent upsert by key (see
 * upsert-writer.ts).
 */
import { InvalidArgumentError } from '../../core/errors.js';
import type { Sink } from '../../runtime/io.js';
import { AppendWriter, type PostgresAppendOptions } from './append-writer.js';
import { gidOwnerPrefix } from './gid.js';
import { type PostgresUpsertOptions, UpsertWriter } from './upsert-writer.js';
import { validateOptions } from './writer-base.js';

export {
  PENDING_GIDS_STATE,
  type PendingTransaction,
  type PostgresAppendOptions,
} from './append-writer.js';
export type { PostgresUpsertOptions } from './upsert-writer.js';
export type { PostgresSinkOptions } from './writer-base.js';

/**
 * Sinks writing rows into a PostgreSQL table.
 *
 * @example
 * env.fromSource(source).sinkTo(
 *   PostgresSink.append({
 *     url: 'postgres://eddy:secret@db:5432/analytics',
 *     table: 'public.events',
 *     columns: ['id', 'user_id', 'amount'],
 *     toRow: (e: Event) => [e.id, e.user, e.amount],
 *     createTable: 'CREATE TABLE IF NOT EXISTS public.events (id bigint, user_id text, amount numeric)',
 *   }),
 *   { uid: 'events-pg' },
 * );
 */
export const PostgresSink = {
  /**
   * Appends every record as one row, exactly once when the job takes checkpoints: the rows of
   * a checkpoint become visible together when it completes (two-phase commit with `PREPARE
   * TRANSACTION`; the server needs `max_prepared_transactions` > 0). Without checkpointing,
   * rows are committed batch by batch.
   */
  append<T>(options: PostgresAppendOptions<T>): Sink<T> {
    validateOptions(options);
    if (options.transactionPrefix !== undefined) gidOwnerPrefix(options.transactionPrefix, 'uid');
    return {
      defaultName: 'postgres-append',
      createWriter: (ctx) => new AppendWriter<T>(ctx, options),
    };
  },

  /**
   * Writes each record as `INSERT … ON CONFLICT (key) DO UPDATE`, in autocommitted batches
   * flushed before each checkpoint is acknowledged: replays after a failure rewrite the same
   * rows, so the table ends up as with exactly-once delivery.
   */
  upsert<T>(options: PostgresUpsertOptions<T>): Sink<T> {
    if (!Array.isArray(options?.key)) {
      throw new InvalidArgumentError(
        'PostgreSQL upsert sink: key (the conflict columns) is required',
      );
    }
    validateOptions(options, options.key);
    return {
      defaultName: 'postgres-upsert',
      createWriter: (ctx) => new UpsertWriter<T>(ctx, options),
    };
  },
};
