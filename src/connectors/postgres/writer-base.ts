/**
 * What both PostgreSQL sink writers share: options, the data connection, opening (table
 * checks, createTable), row buffering and batching. The modes differ in how batches are
 * made durable: {@link AppendWriter} (two-phase commit) and {@link UpsertWriter}.
 */
import { describeSubtask, EddyError, InvalidArgumentError } from '../../core/errors.js';
import type { ConnectorContext, Counter, SinkWriter } from '../../runtime/io.js';
import {
  type Connection,
  type ConnectOptions,
  connect,
  describeServer,
  pgError,
  type Where,
  withReconnect,
} from './client.js';
import { QueryChain } from './query-chain.js';
import { effectiveBatchSize, quoteTable, validateColumns } from './sql.js';

/** Options shared by `PostgresSink.append` and `PostgresSink.upsert`. */
export interface PostgresSinkOptions<T> {
  /** Connection URL, e.g. `postgres://user:password@host:5432/database`. */
  url: string;
  /**
   * The table, optionally schema-qualified (`analytics.events`). Each part is an exact,
   * case-sensitive name (it is quoted); double-quote a part that holds a dot.
   */
  table: string;
  /** The columns written, exact names, in the order of `toRow`'s values. */
  columns: string[];
  /** A record's column values, in the order of `columns`. Runs synchronously per record. */
  toRow: (record: T) => unknown[];
  /**
   * DDL run when the table does not exist, e.g. `CREATE TABLE IF NOT EXISTS events (…)`.
   * Without it, a missing table fails the sink at open (`EDDY_CONNECTOR_CONFIG`).
   */
  createTable?: string;
  /**
   * Rows per multi-row statement (default 500); lowered so rows × columns stays within
   * PostgreSQL's 65535 bind parameters.
   */
  batchSize?: number;
  /**
   * How long to keep reconnecting while the server is unreachable (at open, before a new
   * transaction, on commit; default 60 s); then the sink fails with retriable `EDDY_SINK_IO`.
   */
  maxOutageMs?: number;
}

/** Default rows per statement: large enough that the round trip is not the bottleneck. */
export const DEFAULT_BATCH_SIZE = 500;
export const DEFAULT_MAX_OUTAGE_MS = 60_000;

/** Statements queued on the data connection beyond which `flush` waits (backpressure). */
const MAX_QUEUED = 2;

/**
 * Checks the options when the sink is created (so a job fails while it is built, not in
 * every subtask): names, column lists, batch size, outage limit.
 */
export const validateOptions = <T>(
  options: PostgresSinkOptions<T>,
  key?: readonly string[],
): void => {
  if (typeof options?.url !== 'string' || options.url === '') {
    throw new InvalidArgumentError('PostgreSQL sink: url is required (postgres://user:pw@host/db)');
  }
  if (typeof options.toRow !== 'function') {
    throw new InvalidArgumentError('PostgreSQL sink: toRow must be a function');
  }
  if (!Array.isArray(options.columns)) {
    throw new InvalidArgumentError('PostgreSQL sink: columns must be an array of column names');
  }
  quoteTable(options.table);
  validateColumns(options.columns, key);
  effectiveBatchSize(options.batchSize ?? DEFAULT_BATCH_SIZE, options.columns.length);
  const maxOutageMs = options.maxOutageMs ?? DEFAULT_MAX_OUTAGE_MS;
  if (!(maxOutageMs >= 0)) {
    throw new InvalidArgumentError(`PostgreSQL sink: maxOutageMs must be >= 0, got ${maxOutageMs}`);
  }
};

/** The part of writing both modes share; subclasses decide what a batch is and when it commits. */
export abstract class PostgresWriterBase<T> implements SinkWriter<T> {
  protected readonly where: Where;
  protected readonly batchSize: number;
  protected readonly connectOptions: ConnectOptions;
  protected readonly chain = new QueryChain();
  protected readonly rowsWritten: Counter;
  /** Rows not yet queued as a statement. */
  protected rows: unknown[][] = [];
  protected data: Connection | undefined;
  protected closed = false;
  /** `table` quoted for SQL. */
  protected readonly qualified: string;

  constructor(
    protected readonly ctx: ConnectorContext,
    protected readonly options: PostgresSinkOptions<T>,
    mode: string,
  ) {
    this.qualified = quoteTable(options.table);
    this.where = {
      who: `PostgreSQL ${mode} sink (${describeSubtask(ctx.subtask)}, table ${options.table})`,
      server: describeServer(options.url),
    };
    this.batchSize = effectiveBatchSize(
      options.batchSize ?? DEFAULT_BATCH_SIZE,
      options.columns.length,
    );
    this.connectOptions = {
      url: options.url,
      where: this.where,
      maxOutageMs: options.maxOutageMs ?? DEFAULT_MAX_OUTAGE_MS,
      signal: ctx.stopSignal,
      applicationName: `eddy ${ctx.subtask.operatorUid} ${ctx.subtask.subtaskIndex}`,
    };
    this.rowsWritten = ctx.metrics.counter('rowsWritten');
  }

  async open(): Promise<void> {
    try {
      this.data = await connect(this.connectOptions);
      await this.ensureTable(this.data);
      await this.checkColumns(this.data);
      await this.openMode();
    } catch (e) {
      // A failed open leaves no connection behind, whether or not abort() follows.
      await this.closeConnections();
      throw e;
    }
  }

  /** The mode's own checks and recovery at open, after the table checks. */
  protected async openMode(): Promise<void> {}

  write(record: T): void {
    if (this.closed) {
      throw new EddyError('EDDY_INTERNAL', `${this.where.who}: write after finish or abort`);
    }
    const row = this.options.toRow(record);
    if (!Array.isArray(row) || row.length !== this.options.columns.length) {
      throw new InvalidArgumentError(
        `${this.where.who}: toRow returned ${Array.isArray(row) ? `${row.length} values` : typeof row} ` +
          `for the ${this.options.columns.length} columns ${this.options.columns.join(', ')}`,
      );
    }
    this.rows.push(row);
  }

  /** Queues every full batch; waits while more than two statements are queued. */
  async flush(): Promise<void> {
    this.throwIfFailed();
    while (this.rows.length >= this.batchSize) {
      this.queueBatch(this.rows.splice(0, this.batchSize));
      await this.waitQueue(MAX_QUEUED);
    }
  }

  /** Failure or cancellation: drops buffered rows and closes the connections. */
  async abort(): Promise<void> {
    this.closed = true;
    this.rows = [];
    await this.closeConnections();
  }

  /**
   * The subtask ended normally: closes the connections (a prepared transaction is not tied to
   * a connection, so one still waiting for its commit is unaffected).
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.closeConnections();
  }

  abstract finish(): Promise<void>;

  /** Queues `rows` (at most one batch) as a statement on the data connection. */
  protected abstract queueBatch(rows: unknown[][]): void;

  /** Queues every buffered row (the last batch may be short). */
  protected queueRest(): void {
    const rows = this.rows;
    this.rows = [];
    for (let i = 0; i < rows.length; i += this.batchSize) {
      this.queueBatch(rows.slice(i, i + this.batchSize));
    }
  }

  protected async closeConnections(): Promise<void> {
    const data = this.data;
    this.data = undefined;
    await data?.close();
  }

  /** Waits until at most `n` statements are queued; throws the chain's failure as EDDY_SINK_IO. */
  protected async waitQueue(n: number): Promise<void> {
    try {
      await this.chain.waitBelow(n);
    } catch (e) {
      throw this.writeError(e);
    }
  }

  protected throwIfFailed(): void {
    const f = this.chain.failed;
    if (f !== undefined) throw this.writeError(f.error);
  }

  /** The error a failed statement fails the subtask with. */
  protected writeError(e: unknown): EddyError {
    return pgError(this.where, 'writing rows', e, this.refusalFix());
  }

  protected refusalFix(): string {
    return `Check that table ${this.options.table} has the columns ${this.options.columns.join(', ')} with matching types, and that the user may write it`;
  }

  /** Runs `action` on the data connection, reconnecting while the server is unreachable. */
  protected async onData<R>(action: (c: Connection) => Promise<R>): Promise<R> {
    if (this.closed && this.data === undefined) throw this.closedError();
    const { result, connection } = await withReconnect(this.connectOptions, this.data, action);
    if (this.closed && this.data === undefined) {
      // Aborted while reconnecting: the new connection would outlive the writer.
      await connection.close();
      throw this.closedError();
    }
    this.data = connection;
    return result;
  }

  private closedError(): EddyError {
    return new EddyError('EDDY_SINK_IO', `${this.where.who}: the writer was closed`, {
      domain: 'internal',
    });
  }

  /**
   * Creates the table if it is missing and `createTable` is given, under an advisory lock:
   * concurrent `CREATE TABLE IF NOT EXISTS` from several subtasks can still collide in the
   * catalog (a unique violation on pg_type).
   */
  private async ensureTable(c: Connection): Promise<void> {
    const exists = async () =>
      (await c.client.query('SELECT to_regclass($1) IS NOT NULL AS ok', [this.qualified])).rows[0]
        .ok as boolean;
    try {
      if (await exists()) return;
      if (this.options.createTable === undefined) {
        throw new EddyError(
          'EDDY_CONNECTOR_CONFIG',
          `${this.where.who} at ${this.where.server}: table ${this.qualified} does not exist. ` +
            'Create it, or pass createTable (e.g. CREATE TABLE IF NOT EXISTS …)',
          { domain: 'external' },
        );
      }
      await c.client.query('BEGIN');
      try {
        await c.client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
          `eddy create ${this.qualified}`,
        ]);
        if (!(await exists())) await c.client.query(this.options.createTable);
        await c.client.query('COMMIT');
      } catch (e) {
        await c.client.query('ROLLBACK').catch(() => {});
        throw e;
      }
      if (!(await exists())) {
        throw new EddyError(
          'EDDY_CONNECTOR_CONFIG',
          `${this.where.who} at ${this.where.server}: createTable ran but table ${this.qualified} ` +
            'still does not exist: make createTable create exactly that table',
          { domain: 'external' },
        );
      }
    } catch (e) {
      throw pgError(
        this.where,
        `checking or creating table ${this.qualified}`,
        e,
        'Fix createTable, or create the table and grant the user access',
      );
    }
  }

  /** Fails at open, naming them, when columns are missing (rather than at the first batch). */
  private async checkColumns(c: Connection): Promise<void> {
    let present: Set<string>;
    try {
      const r = await c.client.query(
        'SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped',
        [this.qualified],
      );
      present = new Set(r.rows.map((row: { attname: string }) => row.attname));
    } catch (e) {
      throw pgError(this.where, `reading the columns of ${this.qualified}`, e);
    }
    const missing = this.options.columns.filter((col) => !present.has(col));
    if (missing.length > 0) {
      throw new EddyError(
        'EDDY_CONNECTOR_CONFIG',
        `${this.where.who} at ${this.where.server}: table ${this.qualified} has no column ` +
          `${missing.join(', ')} (it has ${[...present].join(', ')}). Column names are exact and ` +
          'case-sensitive: fix columns or the table',
        { domain: 'external' },
      );
    }
  }
}
