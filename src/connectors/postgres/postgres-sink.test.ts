/**
 * The PostgreSQL sinks against a real server (test/servers): exactly-once append through
 * checkpoints, aborts, crashes and restores at another parallelism; idempotent upserts under
 * replay; refusals (EDDY_CONNECTOR_CONFIG) and lost connections (EDDY_SINK_IO); a job run
 * end to end with an injected failure; and the batching throughput.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerHandle, startPostgres } from '../../../test/servers/index.js';
import { StreamExecutionEnvironment } from '../../api/environment.js';
import { runGraphInThread } from '../../api/job.js';
import { EddyError } from '../../core/errors.js';
import { setFaults } from '../../runtime/faults.js';
import type { Sink, SinkWriter } from '../../runtime/io.js';
import { GeneratorSource } from '../generator-source.js';
import { createTestContext, type TestConnectorContext } from '../testing.js';
import { PENDING_GIDS_STATE, type PendingTransaction, PostgresSink } from './index.js';

let server: ServerHandle;
let admin: pg.Client;
const tmp = mkdtempSync(join(tmpdir(), 'eddy-pg-sink-'));

beforeAll(async () => {
  server = await startPostgres();
  admin = new pg.Client({ connectionString: server.url });
  admin.on('error', () => {});
  await admin.connect();
});

afterAll(async () => {
  await admin?.end().catch(() => {});
  await server?.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

interface Rec {
  id: number;
  payload: string;
}

let tables = 0;
/** A new table `tN (id bigint, payload text)`, or with `ddl` as its column list. */
const newTable = async (ddl = 'id bigint NOT NULL, payload text'): Promise<string> => {
  const t = `t${tables++}`;
  await admin.query(`CREATE TABLE ${t} (${ddl})`);
  return t;
};

const ids = async (table: string): Promise<number[]> =>
  (await admin.query(`SELECT id FROM ${table} ORDER BY id`)).rows.map((r) => Number(r.id));

const preparedGids = async (): Promise<string[]> =>
  (
    await admin.query("SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'eddy:%' ORDER BY gid")
  ).rows.map((r) => r.gid as string);

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from }, (_, i) => from + i);

const recs = (from: number, to: number): Rec[] =>
  range(from, to).map((id) => ({ id, payload: `p-${id}-ü'"` }));

const append = (table: string, url = server.url, extra = {}): Sink<Rec> =>
  PostgresSink.append<Rec>({
    url,
    table,
    columns: ['id', 'payload'],
    toRow: (r) => [r.id, r.payload],
    batchSize: 100,
    maxOutageMs: 5_000,
    // Tests share one server: each table's sink is its own "job", so one test's restore
    // clean-up never touches another's prepared transactions.
    transactionPrefix: table,
    ...extra,
  });

interface Subtasks<T> {
  writers: SinkWriter<T>[];
  ctxs: TestConnectorContext[];
}

/** Opens `parallelism` writers (concurrently, as the runtime does), restored from `state`. */
const openAll = async <T>(
  sink: Sink<T>,
  parallelism: number,
  state?: PendingTransaction[],
  checkpointing = true,
): Promise<Subtasks<T>> => {
  const ctxs = range(0, parallelism).map((i) =>
    createTestContext({
      subtaskIndex: i,
      parallelism,
      operatorName: 'pg-out',
      checkpointing,
      restoredState: state === undefined ? undefined : { [PENDING_GIDS_STATE]: state },
    }),
  );
  const writers = ctxs.map((ctx) => sink.createWriter(ctx));
  await Promise.all(writers.map((w) => w.open()));
  return { writers, ctxs };
};

/** Deals records to subtasks by id (id mod p), writes them and flushes. */
const writeAll = async (s: Subtasks<Rec>, records: readonly Rec[]): Promise<void> => {
  for (const r of records) s.writers[r.id % s.writers.length]!.write(r);
  await Promise.all(s.writers.map((w) => w.flush()));
};

/** Takes checkpoint `cp` on every subtask; returns its union state (what a restore gets). */
const checkpoint = async <T>(s: Subtasks<T>, cp: number): Promise<PendingTransaction[]> => {
  for (const w of s.writers) w.snapshotState?.(cp);
  await Promise.all(s.writers.map((w) => w.snapshotStateAsync?.(cp)));
  return s.ctxs.flatMap((c) => c.operatorState.elements<PendingTransaction>(PENDING_GIDS_STATE));
};

const complete = async <T>(s: Subtasks<T>, cp: number) => {
  await Promise.all(s.writers.map((w) => w.notifyCheckpointComplete?.(cp)));
};

const crash = async <T>(s: Subtasks<T>) => {
  await Promise.all(s.writers.map((w) => w.abort()));
};

const rejection = async (p: Promise<unknown>): Promise<EddyError> => {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(EddyError);
    return e as EddyError;
  }
  throw new Error('expected a rejection');
};

/**
 * Polls `condition` every 10 ms until it holds (fails the test after 30 s: the server ends a
 * closed connection's backend in its own time, seconds on a loaded machine).
 */
const waitFor = async (condition: () => Promise<boolean>): Promise<void> => {
  const deadline = performance.now() + 30_000;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error('condition not met within 30 s');
    await new Promise((r) => setTimeout(r, 10));
  }
};

/** Open connections of sink writers (their application_name starts with 'eddy '). */
const sinkConnections = async (): Promise<number> =>
  Number(
    (
      await admin.query(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE 'eddy %'",
      )
    ).rows[0].n,
  );

/**
 * Waits until no sink connection is left: a backend leaves pg_stat_activity shortly after
 * its client closed the socket, so this waits for the condition instead of sampling once.
 */
const noSinkConnections = () => waitFor(async () => (await sinkConnections()) === 0);

describe('PostgresSink.append (two-phase commit)', () => {
  it('makes a checkpoint’s rows visible exactly once, when the checkpoint completes', async () => {
    const table = await newTable();
    const s = await openAll(append(table), 2);
    await writeAll(s, recs(0, 1234)); // several batches per subtask go out before the barrier
    expect(await ids(table)).toEqual([]);
    const state = await checkpoint(s, 1);
    expect(state.map((p) => p.gid).sort()).toEqual([
      `eddy:${table}:pg-out-uid:0:1`,
      `eddy:${table}:pg-out-uid:1:1`,
    ]);
    expect(await preparedGids()).toEqual(state.map((p) => p.gid).sort());
    expect(await ids(table)).toEqual([]); // prepared, not committed
    await complete(s, 1);
    expect(await ids(table)).toEqual(range(0, 1234));
    expect(await preparedGids()).toEqual([]);

    await writeAll(s, recs(1234, 2000));
    await Promise.all(s.writers.map((w) => w.finish()));
    expect(await ids(table)).toEqual(range(0, 1234)); // the final checkpoint commits the rest
    await checkpoint(s, 2);
    await complete(s, 2);
    expect(await ids(table)).toEqual(range(0, 2000));
    expect(s.ctxs.map((c) => c.counters.get('rowsWritten'))).toEqual([1000, 1000]);
    // After the final commit the writers hold no connection.
    await noSinkConnections();
  });

  it('an aborted checkpoint’s rows stay invisible, and the next completed checkpoint commits them', async () => {
    const table = await newTable();
    const s = await openAll(append(table), 1);
    await writeAll(s, recs(0, 250));
    await checkpoint(s, 1);
    await complete(s, 1);
    await writeAll(s, recs(250, 500));
    await checkpoint(s, 2);
    await s.writers[0]!.notifyCheckpointAborted?.(2);
    expect(await ids(table)).toEqual(range(0, 250));
    await writeAll(s, recs(500, 600));
    const state = await checkpoint(s, 3);
    expect(state.map((p) => p.checkpointId)).toEqual([2, 3]); // 2 is still pending
    await complete(s, 3);
    expect(await ids(table)).toEqual(range(0, 600));
    await crash(s);
  });

  it('an aborted checkpoint’s rows are never visible when the job restores an earlier one', async () => {
    const table = await newTable();
    const sink = append(table);
    const s = await openAll(sink, 1);
    await writeAll(s, recs(0, 250));
    const state1 = await checkpoint(s, 1);
    await complete(s, 1);
    await writeAll(s, recs(250, 500));
    await checkpoint(s, 2);
    await s.writers[0]!.notifyCheckpointAborted?.(2);
    await crash(s);
    expect(await preparedGids()).toHaveLength(1);

    const r = await openAll(sink, 1, state1);
    expect(await preparedGids()).toEqual([]); // checkpoint 2's transaction rolled back
    expect(await ids(table)).toEqual(range(0, 250));
    await writeAll(r, recs(250, 500)); // the source replays after checkpoint 1
    await checkpoint(r, 3);
    await complete(r, 3);
    expect(await ids(table)).toEqual(range(0, 500));
    expect(r.ctxs[0]!.counters.get('preparedRolledBack')).toBe(1);
    await crash(r);
  });

  it('a crash after PREPARE: a restore at another parallelism commits the restored checkpoint and rolls back later ones', async () => {
    const table = await newTable();
    const sink = append(table);
    const old = await openAll(sink, 3);
    await writeAll(old, recs(0, 3000));
    const state1 = await checkpoint(old, 1); // completed, but no subtask heard of it
    await writeAll(old, recs(3000, 3900));
    await checkpoint(old, 2); // prepared, never completed
    await writeAll(old, recs(3900, 4000)); // an open transaction
    await crash(old);
    expect(await preparedGids()).toHaveLength(6);
    expect(await ids(table)).toEqual([]);

    // Restore checkpoint 1 at parallelism 2; then fail before writing and restore it again:
    // the recovery is idempotent (checkpoint 1's transactions are committed by now).
    for (let round = 0; round < 2; round++) {
      const again = await openAll(sink, 2, state1);
      expect(await preparedGids()).toEqual([]);
      expect(await ids(table)).toEqual(range(0, 3000));
      expect(again.ctxs[0]!.counters.get('transactionsCommitted') ?? 0).toBe(round === 0 ? 3 : 0);
      expect(again.ctxs[0]!.counters.get('preparedRolledBack') ?? 0).toBe(round === 0 ? 3 : 0);
      expect(again.ctxs[1]!.counters.get('transactionsCommitted')).toBeUndefined();
      await crash(again);
    }

    // The replay after checkpoint 1, taking checkpoint id 2 again (as a run from a savepoint
    // does): the old run's gids of checkpoint 2 are gone, so the new ones do not collide.
    const next = await openAll(sink, 2, state1);
    await writeAll(next, recs(3000, 4000));
    await checkpoint(next, 2);
    await complete(next, 2);
    expect(await ids(table)).toEqual(range(0, 4000));
    expect(await preparedGids()).toEqual([]);
    await crash(next);
  });

  it('a fresh start rolls back what an earlier run of the sink left prepared', async () => {
    const table = await newTable();
    const sink = append(table);
    const old = await openAll(sink, 2);
    await writeAll(old, recs(0, 100));
    await checkpoint(old, 1);
    await crash(old);
    // Another sink (other uid prefix) keeps its prepared transaction.
    const other = await openAll(append(table, server.url, { transactionPrefix: 'other-job' }), 1);
    await writeAll(other, recs(1000, 1001));
    await checkpoint(other, 1);
    expect(await preparedGids()).toHaveLength(3);

    const fresh = await openAll(sink, 1);
    expect(await preparedGids()).toEqual(['eddy:other-job:pg-out-uid:0:1']);
    await complete(other, 1);
    expect(await ids(table)).toEqual([1000]);
    await crash(fresh);
    await crash(other);
  });

  it('fails the attempt with retriable EDDY_SINK_IO when the connection is lost mid-transaction', async () => {
    const table = await newTable();
    const s = await openAll(append(table), 1);
    await writeAll(s, recs(0, 150)); // one batch goes out inside a new transaction
    // Lost before BEGIN, the connection would simply be replaced: wait for the transaction.
    const inTransaction =
      "application_name = 'eddy pg-out-uid 0' AND state = 'idle in transaction'";
    await waitFor(
      async () =>
        (await admin.query(`SELECT 1 FROM pg_stat_activity WHERE ${inTransaction}`)).rowCount === 1,
    );
    await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${inTransaction}`,
    );
    await writeAll(s, recs(150, 300)).catch(() => {}); // may already fail
    const w = s.writers[0]!;
    let error: EddyError | undefined;
    try {
      w.snapshotState?.(1);
      await w.snapshotStateAsync?.(1);
    } catch (e) {
      error = e as EddyError;
    }
    expect(error).toBeInstanceOf(EddyError);
    expect(error!.code).toBe('EDDY_SINK_IO');
    expect(error!.retriable).toBe(true);
    expect(error!.message).toMatch(/127\.0\.0\.1:\d+\/postgres/);
    // The subtask stays failed: the transaction's rows are gone.
    const again = await rejection(Promise.resolve().then(() => w.flush()));
    expect(again.code).toBe('EDDY_SINK_IO');
    expect(await preparedGids()).toEqual([]);
    expect(await ids(table)).toEqual([]);
    await crash(s);
  });

  it('without checkpointing commits batch by batch and needs no prepared transactions', async () => {
    const table = await newTable();
    const s = await openAll(append(table), 2, undefined, false);
    await writeAll(s, recs(0, 450));
    await Promise.all(s.writers.map((w) => w.finish()));
    expect(await ids(table)).toEqual(range(0, 450));
    expect(await preparedGids()).toEqual([]);
    await noSinkConnections();
  });

  it('creates a missing table with createTable, once, from concurrent subtasks', async () => {
    const table = `created_${tables++}`;
    const sink = append(table, server.url, {
      createTable: `CREATE TABLE IF NOT EXISTS ${table} (id bigint PRIMARY KEY, payload text)`,
    });
    const s = await openAll(sink, 3);
    await writeAll(s, recs(0, 30));
    await checkpoint(s, 1);
    await complete(s, 1);
    expect(await ids(table)).toEqual(range(0, 30));
    await crash(s);
  });

  it('quotes schema-qualified, mixed-case names', async () => {
    await admin.query('CREATE SCHEMA "My Schema"');
    await admin.query('CREATE TABLE "My Schema"."Events" ("Id" bigint, "the payload" text)');
    const sink = PostgresSink.append<Rec>({
      url: server.url,
      table: '"My Schema".Events',
      columns: ['Id', 'the payload'],
      toRow: (r) => [r.id, r.payload],
    });
    const s = await openAll(sink, 1);
    await writeAll(s, recs(0, 3));
    await checkpoint(s, 1);
    await complete(s, 1);
    const rows = (await admin.query('SELECT * FROM "My Schema"."Events" ORDER BY "Id"')).rows;
    expect(rows).toEqual(recs(0, 3).map((r) => ({ Id: String(r.id), 'the payload': r.payload })));
    await crash(s);
  });
});

describe('PostgresSink.upsert', () => {
  interface Kv {
    k: string;
    v: number;
  }
  const kvs = (from: number, to: number): Kv[] =>
    range(from, to).map((i) => ({ k: `key-${(i * 7) % 41}`, v: i }));
  const expected = (records: readonly Kv[]) => {
    const m = new Map<string, number>();
    for (const r of records) m.set(r.k, r.v);
    return [...m].sort(([a], [b]) => a.localeCompare(b));
  };
  const table = async () => {
    const t = await newTable('k text PRIMARY KEY, v int NOT NULL, note text');
    return t;
  };
  const sink = (t: string, url = server.url) =>
    PostgresSink.upsert<Kv>({
      url,
      table: t,
      columns: ['k', 'v', 'note'],
      key: ['k'],
      toRow: (r) => [r.k, r.v, `v${r.v}`],
      batchSize: 50,
      maxOutageMs: 5_000,
    });
  const content = async (t: string) =>
    (await admin.query(`SELECT k, v FROM ${t} ORDER BY k COLLATE "C"`)).rows.map(
      (r) => [r.k, r.v] as [string, number],
    );

  it('is idempotent under replay: the final table is as if each record was written once', async () => {
    const t = await table();
    const all = kvs(0, 1000); // 41 keys, every batch of 50 holds repeated keys
    const s = await openAll(sink(t), 1);
    for (const r of all.slice(0, 500)) s.writers[0]!.write(r);
    await s.writers[0]!.flush();
    await checkpoint(s, 1);
    expect(await content(t)).toEqual(expected(all.slice(0, 500)));
    for (const r of all.slice(500, 900)) s.writers[0]!.write(r);
    await s.writers[0]!.flush(); // written, but after checkpoint 1
    await crash(s);

    // Restore checkpoint 1 twice (a second failure mid-replay): replays rewrite the same rows.
    for (const upTo of [700, 1000]) {
      const r = await openAll(sink(t), 1, []);
      for (const rec of all.slice(500, upTo)) r.writers[0]!.write(rec);
      if (upTo < 1000) {
        await r.writers[0]!.flush();
        await crash(r);
      } else {
        await r.writers[0]!.finish();
      }
    }
    expect(await content(t)).toEqual(expected(all));
    await noSinkConnections();
  });

  it('sends a batch again on a new connection when the connection is lost', async () => {
    const t = await table();
    const all = kvs(0, 600);
    const s = await openAll(sink(t), 1);
    const w = s.writers[0]!;
    for (const r of all.slice(0, 300)) w.write(r);
    await w.flush();
    await checkpoint(s, 1);
    await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'eddy pg-out-uid 0'",
    );
    for (const r of all.slice(300)) w.write(r);
    await w.flush();
    await w.finish();
    expect(await content(t)).toEqual(expected(all));
  });

  it('refuses a key without a unique index with EDDY_CONNECTOR_CONFIG', async () => {
    const t = await newTable('k text, v int, note text');
    const s = await openAll(sink(t), 1);
    for (const r of kvs(0, 60)) s.writers[0]!.write(r);
    const e = await rejection(
      (async () => {
        await s.writers[0]!.flush();
        await s.writers[0]!.finish();
      })(),
    );
    expect(e.code).toBe('EDDY_CONNECTOR_CONFIG');
    expect(e.message).toMatch(/primary key or unique index/);
    await crash(s);
  });
});

describe('refusals and outages', () => {
  it('max_prepared_transactions = 0: append fails with EDDY_CONNECTOR_CONFIG; upsert works', async () => {
    const off = await startPostgres({ maxPreparedTransactions: 0 });
    try {
      const c = new pg.Client({ connectionString: off.url });
      await c.connect();
      await c.query('CREATE TABLE t (id bigint, payload text)');
      await c.query('CREATE TABLE kv (k text PRIMARY KEY, v int)');
      await c.end();
      const e = await rejection(openAll(append('t', off.url), 1));
      expect(e.code).toBe('EDDY_CONNECTOR_CONFIG');
      expect(e.retriable).toBe(false);
      expect(e.message).toContain(`127.0.0.1:${off.port}/postgres`);
      expect(e.message).toMatch(/max_prepared_transactions.*postgresql\.conf.*restart/);

      const up = await openAll(
        PostgresSink.upsert<Rec>({
          url: off.url,
          table: 'kv',
          columns: ['k', 'v'],
          key: ['k'],
          toRow: (r) => [`k${r.id}`, r.id],
        }),
        1,
      );
      for (const r of recs(0, 10)) up.writers[0]!.write(r);
      await up.writers[0]!.finish();
    } finally {
      await off.destroy();
    }
  });

  it('a missing table without createTable, a missing column, wrong credentials: EDDY_CONNECTOR_CONFIG', async () => {
    const missing = await rejection(openAll(append('no_such_table'), 1));
    expect(missing.code).toBe('EDDY_CONNECTOR_CONFIG');
    expect(missing.message).toMatch(/"no_such_table" does not exist.*createTable/);

    const t = await newTable('id bigint');
    const column = await rejection(openAll(append(t), 1));
    expect(column.code).toBe('EDDY_CONNECTOR_CONFIG');
    expect(column.message).toMatch(/has no column payload/);

    const url = server.url.replace('postgres:postgres@', 'postgres:wrong@');
    const auth = await rejection(openAll(append(t, url), 1));
    expect(auth.code).toBe('EDDY_CONNECTOR_CONFIG');
    expect(auth.message).toMatch(/password/);
    expect(auth.message).not.toContain('wrong');
    await noSinkConnections(); // a failed open leaves no connection
  });

  it('rows the table refuses fail without retry (EDDY_SINK_IO, not retriable)', async () => {
    const t = await newTable();
    const sink = PostgresSink.append<Rec>({
      url: server.url,
      table: t,
      columns: ['id', 'payload'],
      toRow: (r) => [r.id === 5 ? null : r.id, r.payload], // id is NOT NULL
    });
    const s = await openAll(sink, 1);
    await writeAll(s, recs(0, 10));
    const e = await rejection(checkpoint(s, 1));
    expect(e.code).toBe('EDDY_SINK_IO');
    expect(e.retriable).toBe(false);
    expect(e.message).toMatch(/null value/);
    await crash(s);
  });

  it('an unreachable server: retries for maxOutageMs, then retriable EDDY_SINK_IO', async () => {
    // A port nobody listens on. Not a destroyed server's port: other tests' processes reuse
    // freed ephemeral ports at once, and a foreign listener fails the connect differently.
    const url = 'postgres://postgres:postgres@127.0.0.1:1/postgres';
    const started = performance.now();
    const e = await rejection(openAll(append('t', url, { maxOutageMs: 400 }), 1));
    expect(performance.now() - started).toBeGreaterThanOrEqual(300);
    expect(e.code).toBe('EDDY_SINK_IO');
    expect(e.retriable).toBe(true);
    expect(e.message).toMatch(/maxOutageMs/);
  });

  it('COMMIT PREPARED survives a server restart between PREPARE and COMMIT', async () => {
    const own = await startPostgres();
    try {
      const c = new pg.Client({ connectionString: own.url });
      await c.connect();
      await c.query('CREATE TABLE t (id bigint, payload text)');
      await c.end();
      const s = await openAll(append('t', own.url, { maxOutageMs: 30_000 }), 1);
      await writeAll(s, recs(0, 200));
      await checkpoint(s, 1);
      await own.stop();
      const restarted = own.start();
      await complete(s, 1); // reconnects while the server comes back, then commits
      await restarted;
      await writeAll(s, recs(200, 300)); // a new transaction on a new connection
      await checkpoint(s, 2);
      await complete(s, 2);
      const check = new pg.Client({ connectionString: own.url });
      await check.connect();
      const n = (await check.query('SELECT count(DISTINCT id) AS n, count(*) AS m FROM t')).rows[0];
      await check.end();
      expect([Number(n.n), Number(n.m)]).toEqual([300, 300]);
      await crash(s);
    } finally {
      await own.destroy();
    }
  });
});

describe('in a job', () => {
  it('writes every record exactly once through a failure after a completed checkpoint', async () => {
    const table = await newTable();
    const count = 20_000;
    const env = new StreamExecutionEnvironment({ jobName: 'pg-e2e', parallelism: 2 });
    env
      .fromSource(
        GeneratorSource.of<Rec>({
          count,
          generate: (i) => ({ id: i, payload: `p${i}` }),
          ratePerSecond: 25_000,
        }),
        { uid: 'gen' },
      )
      .sinkTo(append(table), { uid: 'pg' });
    // The job fails while its sinks commit checkpoint 2: the restart restores checkpoint 2
    // (or later), whose prepared transactions the restored sink commits.
    setFaults([{ point: 'commit-notify', action: 'throw', hit: 2, marker: join(tmp, 'fault') }]);
    const logs: string[] = [];
    try {
      const result = await runGraphInThread(env.buildGraph(), {
        checkpoint: { intervalMs: 100, dir: join(tmp, 'chk') },
        restart: { kind: 'fixed-delay', attempts: 3, delayMs: 10 },
        log: (l) => logs.push(l),
      });
      expect(result.restarts).toBe(1);
    } finally {
      setFaults([]);
    }
    expect(logs.join('\n')).toMatch(/restarting from checkpoint/);
    expect(await ids(table)).toEqual(range(0, count));
    expect(await preparedGids()).toEqual([]);
    await noSinkConnections();
  });
});

describe('throughput', () => {
  it('batches: 100k rows through one subtask, committed by checkpoints', async () => {
    const table = await newTable('id bigint, payload text, amount double precision');
    const measure = async (rows: number, batchSize: number) => {
      const sink = PostgresSink.append<Rec>({
        url: server.url,
        table,
        columns: ['id', 'payload', 'amount'],
        toRow: (r) => [r.id, r.payload, r.id / 7],
        batchSize,
      });
      const s = await openAll(sink, 1);
      const w = s.writers[0]!;
      const started = performance.now();
      let cp = 0;
      for (let i = 0; i < rows; i += 1000) {
        for (const r of recs(i, Math.min(rows, i + 1000))) w.write(r);
        await w.flush();
        if ((i + 1000) % 25_000 === 0) {
          await checkpoint(s, ++cp);
          await complete(s, cp);
        }
      }
      await w.finish();
      await checkpoint(s, ++cp);
      await complete(s, cp);
      const seconds = (performance.now() - started) / 1000;
      await admin.query(`TRUNCATE ${table}`);
      return Math.round(rows / seconds);
    };
    const batched = await measure(100_000, 500);
    const single = await measure(2_000, 1);
    console.log(
      `PostgreSQL append sink: ${batched} rows/s with batchSize 500 (100k rows), ` +
        `${single} rows/s with batchSize 1; ${(batched / single).toFixed(1)}x`,
    );
    expect(batched).toBeGreaterThan(single * 5);
  });
});
