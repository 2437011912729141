/**
 * A real Redis server for tests: redis-server on a free 127.0.0.1 port, its data in a temp
 * directory with the append-only file on, so data written before stop() is there after start().
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CommonServerOptions, type ServerHandle, startServer, tcpProbe } from './common.js';
import { requireBinary } from './provision.js';

/** Options of {@link startRedis}. */
export type RedisOptions = CommonServerOptions;

/** Starts redis-server; url `redis://127.0.0.1:<port>`. */
export const startRedis = async (options: RedisOptions = {}): Promise<ServerHandle> => {
  const bin = requireBinary('redis-server');
  const root = await mkdtemp(join(tmpdir(), 'eddy-redis-'));
  return startServer({
    name: 'redis-server',
    root,
    command: (port) => ({
      file: bin,
      args: [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        root,
        '--appendonly',
        'yes',
        '--appendfsync',
        'everysec',
        // No RDB snapshots: the AOF is the data; no background saves competing for the CPU.
        '--save',
        '',
        '--daemonize',
        'no',
        '--logfile',
        '',
        '--unixsocket',
        '',
      ],
    }),
    url: (port) => `redis://127.0.0.1:${port}`,
    // PING answers -LOADING while the AOF loads: +PONG means ready for commands.
    probe: (port) => tcpProbe(port, { send: 'PING\r\n', expect: /^\+PONG\r\n/ }),
    // SIGTERM: Redis flushes and fsyncs the AOF, then exits.
    stopSignal: 'SIGTERM',
    readyTimeoutMs: options.readyTimeoutMs,
    samePortRetryMs: options.samePortRetryMs,
  });
};
