/**
 * The real-server test harness for the connector tests (issue 12): start, wait for readiness,
 * stop/restart and destroy a NATS (JetStream), Redis or PostgreSQL server on a free
 * 127.0.0.1 port with its data in a temp directory.
 *
 *   const nats = await startNats();   // nats.url = nats://127.0.0.1:<port>
 *   ...
 *   afterAll(() => nats.destroy());
 *
 * A server that cannot start throws (ServerStartError, with its last log lines): the test
 * fails, it is never skipped. Servers are killed when the test process ends.
 */
export { type CommonServerOptions, type ServerHandle, ServerStartError } from './common.js';
export { type NatsOptions, startNats } from './nats.js';
export { type PostgresOptions, startPostgres } from './postgres.js';
export { type RedisOptions, startRedis } from './redis.js';
