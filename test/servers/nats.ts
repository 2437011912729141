/**
 * A real NATS server with JetStream for tests: `nats-server -js` on a free 127.0.0.1 port, its
 * JetStream store in a temp directory (kept across stop()/start(), so streams survive a restart).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CommonServerOptions, type ServerHandle, startServer, tcpProbe } from './common.js';
import { requireBinary } from './provision.js';

/** Options of {@link startNats}. */
export type NatsOptions = CommonServerOptions;

/** Starts nats-server with JetStream; url `nats://127.0.0.1:<port>`. */
export const startNats = async (options: NatsOptions = {}): Promise<ServerHandle> => {
  const bin = requireBinary('nats-server');
  const root = await mkdtemp(join(tmpdir(), 'eddy-nats-'));
  return startServer({
    name: 'nats-server',
    root,
    command: (port) => ({
      file: bin,
      // A fixed server name: the JetStream store is the same server's across restarts.
      args: [
        '-js',
        '-a',
        '127.0.0.1',
        '-p',
        String(port),
        '-sd',
        join(root, 'store'),
        '-n',
        `eddy-test-${port}`,
      ],
    }),
    url: (port) => `nats://127.0.0.1:${port}`,
    // INFO greeting, then CONNECT + PING must get PONG: the server accepts clients (JetStream is
    // enabled before the server accepts clients).
    probe: (port) =>
      tcpProbe(port, {
        greeting: /^INFO .*\r\n/,
        send: 'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n',
        expect: /PONG\r\n/,
      }),
    // SIGINT: shutdown that flushes the JetStream store, exit 0.
    stopSignal: 'SIGINT',
    readyTimeoutMs: options.readyTimeoutMs,
    samePortRetryMs: options.samePortRetryMs,
  });
};
