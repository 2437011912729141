/**
 * A real PostgreSQL server for tests: initdb into a temp directory, then `postgres` on a free
 * 127.0.0.1 port (TCP only, no Unix socket), password auth for the superuser 'postgres'
 * (password 'postgres'), max_prepared_transactions set for two-phase-commit sinks.
 *
 * Hazards: PostgreSQL refuses to run as root (then it runs as the user from provision.ts, and
 * the temp directory is that user's); durability settings are off (fsync) because the tests
 * only stop it gracefully: a graceful stop still writes everything.
 */
import { execFile } from 'node:child_process';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import {
  type CommonServerOptions,
  removeAtExit,
  type ServerHandle,
  startServer,
} from './common.js';
import { type PgUser, postgresRuntime } from './provision.js';

const run = promisify(execFile);

/** Options of {@link startPostgres}. */
export interface PostgresOptions extends CommonServerOptions {
  /** max_prepared_transactions (default 64; 0 disables PREPARE TRANSACTION). */
  maxPreparedTransactions?: number;
  /** More server settings, passed as `-c name=value` (e.g. `{ wal_level: 'logical' }`). */
  settings?: Record<string, string | number>;
}

/** One readiness attempt: a real query over TCP with the handle's URL. */
const probe = async (url: string) => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  // A connection refused while starting also emits 'error' on the client: keep it handled.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => {});
  }
};

const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', TZ: 'UTC' };

/** initdb into `<root>/data` (root owned by the server's user), superuser postgres/postgres. */
const initdb = async (binDir: string, user: PgUser | undefined, root: string) => {
  const ids = user ? { uid: user.uid, gid: user.gid } : {};
  const pwfile = join(root, 'pwfile');
  await writeFile(pwfile, 'postgres\n', { mode: 0o600 });
  if (user) await chown(pwfile, user.uid, user.gid);
  try {
    await run(
      join(binDir, 'initdb'),
      [
        ...['-D', join(root, 'data'), '-U', 'postgres', `--pwfile=${pwfile}`],
        ...['--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--no-locale'],
        // No fsync of the new cluster: a test cluster does not need to survive a power loss.
        '--no-sync',
      ],
      { ...ids, cwd: root, env },
    );
  } catch (e) {
    const err = e as { stderr?: string; message?: string };
    throw new Error(
      `initdb (${binDir}) failed${user ? ` as user ${user.name}` : ''}: ${err.stderr?.trim() || err.message}`,
    );
  } finally {
    await rm(pwfile, { force: true });
  }
};

/** A temp directory owned by the server's user. */
const ownedTempDir = async (prefix: string, user: PgUser | undefined) => {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  if (user) await chown(dir, user.uid, user.gid);
  return dir;
};

let template: Promise<string> | undefined;

/**
 * A freshly initialised cluster, made once per process: copying it (cp -a keeps owners and
 * modes) is about twice as fast as initdb. It is removed when the process exits.
 */
const templateCluster = (binDir: string, user: PgUser | undefined): Promise<string> => {
  if (!template) {
    const made = (async () => {
      const dir = await ownedTempDir('eddy-pg-template-', user);
      removeAtExit(dir);
      await initdb(binDir, user, dir);
      return join(dir, 'data');
    })();
    // A failed initdb is not cached: the next start tries again (and fails with its own message).
    made.catch(() => {
      if (template === made) template = undefined;
    });
    template = made;
  }
  return template;
};

/** Starts PostgreSQL; url `postgres://postgres:postgres@127.0.0.1:<port>/postgres`. */
export const startPostgres = async (options: PostgresOptions = {}): Promise<ServerHandle> => {
  const { binDir, user } = postgresRuntime();
  const root = await ownedTempDir('eddy-pg-', user);
  removeAtExit(root);
  const data = join(root, 'data');
  try {
    await run('cp', ['-a', await templateCluster(binDir, user), data]);
  } catch (e) {
    await rm(root, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    max_prepared_transactions: options.maxPreparedTransactions ?? 64,
    fsync: 'off',
    full_page_writes: 'off',
    shared_buffers: '32MB',
    ...options.settings,
  };
  const url = (port: number) => `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  return startServer({
    name: 'postgres',
    root,
    command: (port) => ({
      file: join(binDir, 'postgres'),
      args: [
        '-D',
        data,
        '-p',
        String(port),
        ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      ],
    }),
    url,
    probe: (port) => probe(url(port)),
    // SIGINT: fast shutdown (disconnects clients, checkpoints, exits). SIGTERM would wait for
    // every client to disconnect.
    stopSignal: 'SIGINT',
    user,
    env,
    readyTimeoutMs: options.readyTimeoutMs,
    samePortRetryMs: options.samePortRetryMs,
  });
};
