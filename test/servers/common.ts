/**
 * The machinery shared by the real-server test harness: free ports, spawning a server with its
 * output in a log file, waiting for readiness by a protocol round trip, graceful stop, and
 * killing every server when the test process ends (servers must never outlive the tests).
 *
 * Hazards handled here:
 * - a free port found by binding port 0 can be taken before the server binds it: the first
 *   start retries on a fresh port when the server's log says the address is in use;
 * - a test process killed by a signal runs no 'exit' handler: servers are started through
 *   `setpriv --pdeathsig KILL` (util-linux) when present, so the kernel kills them with their
 *   parent; the 'exit' handler covers the normal end of the process;
 * - a server that dies while starting fails at once, with its last log lines, instead of
 *   waiting for the readiness timeout.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fstatSync,
  openSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { delimiter, join } from 'node:path';

/** A real server started for a test: see test/servers/index.ts. */
export interface ServerHandle {
  /** Connection URL, e.g. `nats://127.0.0.1:4222`. */
  url: string;
  /** TCP port on 127.0.0.1; the same across stop()/start(). */
  port: number;
  /** Temporary directory holding the server's data and its log (`server.log`). */
  dataDir: string;
  /** Stops the process gracefully and waits for its exit; keeps the data. No-op when stopped. */
  stop(): Promise<void>;
  /** Starts the server again on the same port and data; waits until it is ready. */
  start(): Promise<void>;
  /** stop() then removes dataDir. */
  destroy(): Promise<void>;
}

/** Options common to every server. */
export interface CommonServerOptions {
  /** How long to wait for the server to accept a protocol round trip (default 20 000 ms). */
  readyTimeoutMs?: number;
  /** How long start() retries when another process holds the server's port (default 2000 ms). */
  samePortRetryMs?: number;
}

/** How to run and probe one kind of server. */
export interface ServerSpec {
  /** Name used in messages, e.g. 'nats-server'. */
  name: string;
  /** The temp directory (the handle's dataDir); the log is `<root>/server.log`. */
  root: string;
  /** Command line for a given port. */
  command(port: number): { file: string; args: string[] };
  /** URL for a given port. */
  url(port: number): string;
  /** One readiness attempt: resolves when the server answers, throws otherwise. */
  probe(port: number): Promise<void>;
  /** Signal for a graceful stop (keeps data). */
  stopSignal: NodeJS.Signals;
  /** Run as this user (PostgreSQL refuses root). */
  user?: { uid: number; gid: number };
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  samePortRetryMs?: number;
}

const live = new Set<ChildProcess>();
/** Temp directories of handles not destroyed yet: removed when the process exits. */
const undestroyed = new Set<string>();
let exitHookInstalled = false;

/** Removes `dir` when the process exits (a temp directory not tied to one handle). */
export const removeAtExit = (dir: string): void => {
  installExitHook();
  undestroyed.add(dir);
};

/** Kills every live server and removes the directories of handles not destroyed. Synchronous. */
const cleanUp = () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  if (process.env.EDDY_KEEP_SERVER_DIRS === '1') return;
  for (const dir of undestroyed) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort
    }
  }
  undestroyed.clear();
};

/**
 * Cleans up at process exit and on SIGTERM/SIGINT/SIGHUP (vitest ends its fork workers with
 * SIGTERM, which runs no 'exit' handler), e.g. after a test timed out before its destroy().
 * A signal is then re-raised with its default action unless someone else listens for it.
 * EDDY_KEEP_SERVER_DIRS=1 keeps the directories for a post-mortem. SIGKILL runs nothing: then
 * the parent-death signal kills the servers and the directories stay.
 */
const installExitHook = () => {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', cleanUp);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSignal = () => {
      cleanUp();
      process.off(signal, onSignal);
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
};

/** Finds an executable on PATH, also looking in the sbin directories a non-root PATH may lack. */
export const findBinary = (name: string): string | undefined => {
  const dirs = [
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/local/sbin',
    '/usr/local/bin',
    '/usr/sbin',
    '/usr/bin',
    '/sbin',
    '/bin',
  ].filter((d) => d.length > 0);
  for (const dir of dirs) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
};

/** setpriv, if it supports --pdeathsig (util-linux >= 2.33). */
const setpriv = ((file) => {
  if (!file) return undefined;
  const help = spawnSync(file, ['--help'], { encoding: 'utf8' });
  return help.stdout?.includes('--pdeathsig') ? file : undefined;
})(findBinary('setpriv'));

/** A port on 127.0.0.1 that was free a moment ago (the caller retries if it is taken since). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });

/** The last lines of a log file, for error messages. */
export const logTail = (file: string, lines = 25): string => {
  if (!existsSync(file)) return '(no log file)';
  const text = readFileSync(file, 'utf8').trimEnd();
  if (text.length === 0) return '(log is empty)';
  return text.split('\n').slice(-lines).join('\n');
};

/** Exchange on a fresh TCP connection: optional greeting, then `send`, then wait for `expect`. */
export const tcpProbe = (
  port: number,
  o: { greeting?: RegExp; send: string; expect: RegExp; timeoutMs?: number },
): Promise<void> =>
  new Promise((resolve, reject) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    let sent = false;
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(
      () =>
        done(new Error(`no answer within ${o.timeoutMs ?? 2000} ms (got ${JSON.stringify(buf)})`)),
      o.timeoutMs ?? 2000,
    );
    const send = () => {
      sent = true;
      sock.write(o.send);
    };
    sock.setEncoding('utf8');
    sock.once('connect', () => {
      if (!o.greeting) send();
    });
    sock.on('data', (d: string) => {
      buf += d;
      if (!sent && o.greeting?.test(buf)) send();
      else if (sent && o.expect.test(buf)) done();
      else if (/^-|\r\n-/.test(buf))
        done(new Error(`server answered ${JSON.stringify(buf.trim())}`));
    });
    sock.once('error', (e) => done(e));
    sock.once('close', () => done(new Error(`connection closed (got ${JSON.stringify(buf)})`)));
  });

/** Whether this run's output (not an earlier run's) says the port was taken. */
const addressInUse = (logFile: string, run: Running) =>
  existsSync(logFile) &&
  /address already in use/i.test(readFileSync(logFile).subarray(run.logOffset).toString('utf8'));

/** Error thrown when a server cannot start: names the server, port, cause and its last log lines. */
export class ServerStartError extends Error {
  constructor(
    readonly server: string,
    readonly port: number,
    readonly reason: string,
    readonly log: string,
    readonly logFile: string,
  ) {
    super(
      `${server} on 127.0.0.1:${port} did not become ready: ${reason}\n` +
        `--- last lines of ${logFile} ---\n${log}\n---`,
    );
    this.name = 'ServerStartError';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A spawned server process with its exit tracked. */
interface Running {
  child: ChildProcess;
  /** Size of the log when this run began: what follows is this run's output. */
  logOffset: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited: () => boolean;
}

const launch = (spec: ServerSpec, port: number, logFile: string): Running => {
  const { file, args } = spec.command(port);
  const fd = openSync(logFile, 'a');
  const logOffset = fstatSync(fd).size;
  let cmd = file;
  let argv = args;
  const opts: Parameters<typeof spawn>[2] = {
    cwd: spec.root,
    env: spec.env ?? process.env,
    stdio: ['ignore', fd, fd],
  };
  if (setpriv) {
    // setpriv sets the parent-death signal after changing uid (a uid change clears it), then
    // execs the server: the server's pid is child.pid.
    const who = spec.user
      ? ['--reuid', String(spec.user.uid), '--regid', String(spec.user.gid), '--clear-groups']
      : [];
    cmd = setpriv;
    argv = ['--pdeathsig', 'KILL', ...who, '--', file, ...args];
  } else if (spec.user) {
    opts.uid = spec.user.uid;
    opts.gid = spec.user.gid;
  }
  let child: ChildProcess;
  try {
    child = spawn(cmd, argv, opts);
  } finally {
    closeSync(fd);
  }
  installExitHook();
  live.add(child);
  // A forgotten server must not keep the test process alive; the exit hook kills it.
  child.unref();
  let gone = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      gone = true;
      live.delete(child);
      resolve({ code, signal });
    });
    child.once('error', (e) => {
      gone = true;
      live.delete(child);
      spawnErrors.set(child, e);
      resolve({ code: null, signal: null });
    });
  });
  return { child, logOffset, exited, hasExited: () => gone };
};

const spawnErrors = new WeakMap<ChildProcess, Error>();

/** Waits until the server answers a probe, dies, or the timeout passes. */
const awaitReady = async (spec: ServerSpec, run: Running, port: number, logFile: string) => {
  const timeout = spec.readyTimeoutMs ?? 20_000;
  const deadline = Date.now() + timeout;
  let lastError = 'no attempt';
  let delay = 20;
  for (;;) {
    if (run.hasExited()) {
      const { code, signal } = await run.exited;
      const spawnError = spawnErrors.get(run.child);
      const reason = spawnError
        ? `could not run it: ${spawnError.message}`
        : `the process exited while starting (code ${code}, signal ${signal})`;
      throw new ServerStartError(spec.name, port, reason, logTail(logFile), logFile);
    }
    try {
      // Race the exit: a probe that hangs (e.g. on another process holding the port) must not
      // delay noticing that the server died.
      await Promise.race([
        spec.probe(port),
        run.exited.then(() => {
          throw new Error('exited');
        }),
      ]);
      return;
    } catch (e) {
      lastError = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() >= deadline) {
      await stopProcess(run, 'SIGKILL', 5000);
      throw new ServerStartError(
        spec.name,
        port,
        `no successful round trip within ${timeout} ms (last attempt: ${lastError})`,
        logTail(logFile),
        logFile,
      );
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 200);
  }
};

/** Sends `signal`, waits for the exit; SIGKILL after `graceMs`. */
const stopProcess = async (run: Running, signal: NodeJS.Signals, graceMs: number) => {
  if (run.hasExited()) return;
  run.child.kill(signal);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), graceMs);
  try {
    await run.exited;
  } finally {
    clearTimeout(timer);
  }
};

/** Starts a server on a free port (retrying when the port was taken) and returns its handle. */
export const startServer = async (spec: ServerSpec): Promise<ServerHandle> => {
  const logFile = join(spec.root, 'server.log');
  // Registered now: a test that times out while this starts still gets the directory removed.
  removeAtExit(spec.root);
  let run: Running | undefined;
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    run = launch(spec, port, logFile);
    try {
      await awaitReady(spec, run, port, logFile);
      break;
    } catch (e) {
      if (attempt < 5 && e instanceof ServerStartError && addressInUse(logFile, run)) continue;
      await rm(spec.root, { recursive: true, force: true }).catch(() => {});
      undestroyed.delete(spec.root);
      // The message keeps the log's last lines: the directory is gone.
      throw e;
    }
  }
  const handle: ServerHandle = {
    url: spec.url(port),
    port,
    dataDir: spec.root,
    stop: async () => {
      if (run) await stopProcess(run, spec.stopSignal, 15_000);
      run = undefined;
    },
    start: async () => {
      if (run && !run.hasExited()) return;
      // The same port must be used (clients reconnect to it). If another process holds it (an
      // outgoing connection may get it as its local port), retry for a while, then fail.
      const retryMs = spec.samePortRetryMs ?? 2000;
      const deadline = Date.now() + retryMs;
      for (;;) {
        const attempt = launch(spec, port, logFile);
        run = attempt;
        try {
          await awaitReady(spec, attempt, port, logFile);
          return;
        } catch (e) {
          run = undefined;
          if (!(e instanceof ServerStartError) || !addressInUse(logFile, attempt)) throw e;
          if (Date.now() >= deadline) {
            throw new ServerStartError(
              spec.name,
              port,
              `port ${port} is taken by another process (restarts use the same port; retried for ${retryMs} ms)`,
              e.log,
              logFile,
            );
          }
          await sleep(100);
        }
      }
    },
    destroy: async () => {
      await handle.stop();
      await rm(spec.root, { recursive: true, force: true });
      undestroyed.delete(spec.root);
    },
  };
  return handle;
};
