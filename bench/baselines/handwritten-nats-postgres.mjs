#!/usr/bin/env node
/**
 * The hand-written baseline for the connectors benchmark: what a user would write without a
 * framework to move a JetStream stream into PostgreSQL with a running total per user.
 * Single-threaded: one ordered JetStream consumer over the whole stream (every subject), read
 * up to the stream's last sequence at start; JSON.parse per message; a Map<string, number> of
 * running totals; rows buffered and written as multi-row INSERTs of `batch` rows with
 * autocommit, up to 4 statements queued on one connection (so reading and writing overlap).
 * At least once: a crash replays from the start (no positions are stored).
 *
 *   node bench/baselines/handwritten-nats-postgres.mjs <natsUrl> <stream> <pgUrl> <table> <statsFile> [batch]
 *
 * The stats file has the contract of `eddy run --stats-file`: durationMs (from the start of
 * the program, after module loading, to the last INSERT committed), recordsIn, maxRssBytes.
 */
import { writeFileSync } from 'node:fs';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';

const started = performance.now();
const [natsUrl, stream, pgUrl, table, statsFile, batchArg] = process.argv.slice(2);
if (!natsUrl || !stream || !pgUrl || !table || !statsFile) {
  console.error(
    'usage: handwritten-nats-postgres.mjs <natsUrl> <stream> <pgUrl> <table> <statsFile> [batch]',
  );
  process.exit(2);
}
const BATCH = Number(batchArg ?? 500);
const MAX_IN_FLIGHT = 4;

const db = new pg.Client({ connectionString: pgUrl });
await db.connect();
await db.query(
  `CREATE TABLE IF NOT EXISTS "${table}" ("user" text NOT NULL, total double precision NOT NULL)`,
);
// One prepared multi-row statement for full batches; the last, shorter batch gets its own.
const insertSql = (rows) =>
  `INSERT INTO "${table}" ("user", total) VALUES ${Array.from(
    { length: rows },
    (_, i) => `($${2 * i + 1}, $${2 * i + 2})`,
  ).join(', ')}`;
const fullBatchSql = insertSql(BATCH);

// Statements chained one after another on the connection (pg runs one query at a time), at
// most MAX_IN_FLIGHT queued: reading continues while the server inserts.
let tail = Promise.resolve();
const queued = [];
let failure;
const flush = async (params, rows) => {
  tail = tail
    .then(() =>
      db.query(
        rows === BATCH
          ? { name: 'insert-batch', text: fullBatchSql, values: params }
          : { text: insertSql(rows), values: params },
      ),
    )
    .then(
      () => {},
      (e) => {
        failure ??= e;
      },
    );
  queued.push(tail);
  if (queued.length >= MAX_IN_FLIGHT) await queued.shift();
  if (failure) throw failure;
};

const nc = await connect({ servers: natsUrl });
const jsm = await jetstreamManager(nc);
const last = (await jsm.streams.info(stream)).state.last_seq;
const consumer = await jetstream(nc).consumers.get(stream);
const totals = new Map();
let params = [];
let recordsIn = 0;
if (last > 0) {
  const messages = await consumer.consume({ max_messages: 1000 });
  for await (const m of messages) {
    const event = m.json();
    const total = (totals.get(event.user) ?? 0) + event.amount;
    totals.set(event.user, total);
    params.push(event.user, total);
    recordsIn++;
    if (params.length === 2 * BATCH) {
      await flush(params, BATCH);
      params = [];
    }
    if (m.seq >= last) break;
  }
}
if (params.length > 0) await flush(params, params.length / 2);
await tail;
if (failure) throw failure;
const durationMs = performance.now() - started;
await nc.close();
await db.end();
writeFileSync(
  statsFile,
  JSON.stringify({ durationMs, recordsIn, maxRssBytes: process.resourceUsage().maxRSS * 1024 }),
);
