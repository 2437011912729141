/**
 * ControlConnection over real TCP sockets on 127.0.0.1: messages, heartbeats, deliberate closes,
 * losses and corrupt streams; parseAddress and openConnection.
 *
 * The timeout tests use short heartbeats (ping every 20 ms, lost after 150 ms of silence) so
 * losses show quickly, the others lenient ones; every test waits for events (promises,
 * conditions), never for a fixed time. Four tests pin defects found (and fixed) in wire.ts: a
 * stall on this side taken for a lost peer, delivery after the end, non-message frames taken for
 * a lost peer, and late onClose handlers told of a deliberate close after a loss.
 */
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import { ControlConnection, openConnection, parseAddress } from './wire.js';

/** Short heartbeats, for the tests of timeouts. */
const HB = { heartbeatMs: 20, timeoutMs: 150 };
/**
 * Lenient heartbeats for the other tests: on a loaded machine this process can stall for more
 * than 150 ms, and a stalled side reports its peer lost (see the stall test below).
 */
const CALM = { heartbeatMs: 50, timeoutMs: 10_000 };
/** The encoding of wire.ts, to write frames by hand. */
const packr = new Packr({ useRecords: false, moreTypes: true });

interface Msg {
  type: string;
  [k: string]: unknown;
}
type Conn = ControlConnection<Msg, Msg>;

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A server on a free port of 127.0.0.1; resolves with the port and the next accepted socket. */
const listen = async (): Promise<{ port: number; accepted: Promise<Socket> }> => {
  let accept!: (s: Socket) => void;
  const accepted = new Promise<Socket>((r) => {
    accept = r;
  });
  const server = createServer((s) => {
    sockets.push(s);
    accept(s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, accepted };
};

/** Both ends as ControlConnections: `server` accepted, `client` through openConnection. */
const pair = async (hb = CALM): Promise<{ server: Conn; client: Conn }> => {
  const { port, accepted } = await listen();
  const client = await openConnection<Msg, Msg>('127.0.0.1', port, 'the server', hb);
  const server = new ControlConnection<Msg, Msg>(await accepted, 'the client', hb);
  return { server, client };
};

/** A raw client socket (no ControlConnection) to `port`. */
const rawClient = (port: number): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port });
    sockets.push(s);
    s.once('error', reject);
    s.once('connect', () => resolve(s));
  });

const closed = (c: Conn): Promise<EddyError | undefined> => new Promise((r) => c.onClose(r));

/** Collects a connection's messages; `next(n)` resolves once n have arrived. */
const inbox = (c: Conn) => {
  const got: Msg[] = [];
  let wake: (() => void) | undefined;
  c.onMessage((m) => {
    got.push(m);
    wake?.();
  });
  return {
    got,
    next: async (n: number): Promise<Msg[]> => {
      while (got.length < n) await new Promise<void>((r) => (wake = r));
      return got.slice(0, n);
    },
  };
};

const frame = (payload: Uint8Array): Buffer => {
  const b = Buffer.alloc(4 + payload.byteLength);
  b.writeUInt32BE(payload.byteLength, 0);
  b.set(payload, 4);
  return b;
};

const waitUntil = async (done: () => boolean, what: string, timeoutMs = 5000) => {
  for (const deadline = Date.now() + timeoutMs; !done(); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('ControlConnection: messages', () => {
  it('round-trips messages both ways: bytes, nested objects, undefined fields, unicode', async () => {
    const { server, client } = await pair();
    const atServer = inbox(server);
    const atClient = inbox(client);
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => i % 256);
    const sent: Msg[] = [
      { type: 'a', bytes, n: 1.5, big: -(2 ** 40), neg: -1, t: true, f: false, nil: null },
      { type: 'b', nested: { list: [1, 'two', { three: [3] }], empty: {}, none: [] } },
      { type: 'c', missing: undefined, inner: { alsoMissing: undefined, kept: 0 } },
      { type: 'd', text: 'grüße, 世界 🌊', empty: '' },
    ];
    for (const m of sent) client.send(m);
    const got = await atServer.next(sent.length);
    expect(got).toEqual(sent);
    expect(got[0]!.bytes).toBeInstanceOf(Uint8Array);
    expect([...(got[0]!.bytes as Uint8Array)]).toEqual([...bytes]);
    // undefined fields arrive as present-but-undefined keys.
    expect('missing' in got[2]!).toBe(true);
    expect(got[2]!.missing).toBeUndefined();
    server.send({ type: 'reply', to: 'a', payload: { ok: true } });
    expect(await atClient.next(1)).toEqual([{ type: 'reply', to: 'a', payload: { ok: true } }]);
    client.close();
    server.close();
  });

  it('carries a 3 MB message (frames across many socket chunks) and the messages after it', async () => {
    // Built before the connection exists: filling it blocks the event loop (see the stall test).
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.byteLength; i += 4096) big.fill(i % 251, i, i + 4096);
    const { server, client } = await pair();
    const atServer = inbox(server);
    client.send({ type: 'bundle', code: big });
    client.send({ type: 'after', n: 1 });
    const [first, second] = await atServer.next(2);
    expect(first!.type).toBe('bundle');
    expect(Buffer.from(first!.code as Uint8Array).equals(big)).toBe(true);
    expect(second).toEqual({ type: 'after', n: 1 });
    client.close();
  });

  it('keeps messages that arrive before onMessage is set, in order', async () => {
    const { port, accepted } = await listen();
    // The client never pings here, so every byte the server reads is one of its messages.
    const client = await openConnection<Msg, Msg>('127.0.0.1', port, 'the server', {
      heartbeatMs: 60_000,
      timeoutMs: 120_000,
    });
    const socket = await accepted;
    const server = new ControlConnection<Msg, Msg>(socket, 'the client', CALM);
    let bytes = 0;
    // Registered after the connection's own listener: it sees chunks already decoded.
    socket.on('data', (d: Buffer) => {
      bytes += d.byteLength;
    });
    const sent = Array.from({ length: 5 }, (_, i) => ({ type: 'early', i }));
    for (const m of sent) client.send(m);
    const total = sent.reduce((n, m) => n + frame(packr.pack(m)).byteLength, 0);
    await waitUntil(() => bytes >= total, 'the early messages to arrive');
    const got: Msg[] = [];
    server.onMessage((m) => got.push(m));
    expect(got).toEqual(sent);
    client.close();
  });

  it('never delivers pings to the handler, and heartbeats keep an idle connection open', async () => {
    // Timeout 500 ms (stalls of this process under load stay below it); pings every 10 ms.
    const hb = { heartbeatMs: 10, timeoutMs: 500 };
    const { port, accepted } = await listen();
    const client = await openConnection<Msg, Msg>('127.0.0.1', port, 'the server', hb);
    const socket = await accepted;
    const server = new ControlConnection<Msg, Msg>(socket, 'the client', hb);
    let bytes = 0;
    socket.on('data', (d: Buffer) => {
      bytes += d.byteLength;
    });
    const atServer = inbox(server);
    const atClient = inbox(client);
    // 80 pings take >= 800 ms: well over the timeout, on both sides, with nothing else sent.
    const ping = frame(packr.pack({ type: 'ping' })).byteLength;
    await waitUntil(() => bytes >= 80 * ping, '80 pings from the client');
    expect(server.closed).toBe(false);
    expect(client.closed).toBe(false);
    expect(atServer.got).toEqual([]);
    expect(atClient.got).toEqual([]);
    client.send({ type: 'still-here' });
    expect(await atServer.next(1)).toEqual([{ type: 'still-here' }]);
    client.close();
  });
});

describe('ControlConnection: ends', () => {
  it('a peer that never sends anything is lost after timeoutMs, named, as a heartbeat timeout', async () => {
    const { port, accepted } = await listen();
    const started = Date.now();
    // The server side is a raw socket that reads (our pings) but never writes.
    const client = await openConnection<Msg, Msg>('127.0.0.1', port, 'silent peer at X', HB);
    const raw = await accepted;
    let pings = 0;
    raw.on('data', () => {
      pings++;
    });
    const error = await closed(client);
    expect(Date.now() - started).toBeGreaterThanOrEqual(HB.timeoutMs);
    expect(error).toBeInstanceOf(EddyError);
    expect(error!.code).toBe('EDDY_WORKER_CRASHED');
    expect(error!.message).toMatch(
      /^silent peer at X sent nothing for \d+ ms \(heartbeat timeout 150 ms\)$/,
    );
    expect(client.closed).toBe(true);
    // The client pinged while it waited, and dropped the socket when it gave up.
    expect(pings).toBeGreaterThan(0);
    await new Promise((r) => (raw.destroyed ? r(undefined) : raw.once('close', r)));
  });

  it('the silent side of a ControlConnection pair is lost too (one end stops pinging)', async () => {
    // The server pings rarely (every 10 s), so the client hears silence; the client pings often.
    const { port, accepted } = await listen();
    const client = await openConnection<Msg, Msg>('127.0.0.1', port, 'slow server', HB);
    const server = new ControlConnection<Msg, Msg>(await accepted, 'the client', {
      heartbeatMs: 10_000,
      timeoutMs: 60_000,
    });
    const [atClient, atServer] = await Promise.all([closed(client), closed(server)]);
    expect(atClient!.code).toBe('EDDY_WORKER_CRASHED');
    expect(atClient!.message).toMatch(/slow server .*heartbeat timeout 150 ms/);
    // The server sees the client drop the connection without goodbye: a loss, not a close.
    expect(atServer!.code).toBe('EDDY_WORKER_CRASHED');
    // A FIN, or a reset when unread bytes were in the destroyed socket's buffer.
    expect(atServer!.message).toMatch(
      /^the client( closed the connection|: connection failed: .*ECONNRESET)$/,
    );
  });

  it('close() sends goodbye: onClose(undefined) on both sides, after the messages sent before it', async () => {
    const { server, client } = await pair();
    const atClient = inbox(client);
    const clientClosed = closed(client);
    const serverClosed = closed(server);
    server.send({ type: 'one' });
    server.send({ type: 'two' });
    server.close();
    expect(server.closed).toBe(true);
    expect(await serverClosed).toBeUndefined();
    expect(await clientClosed).toBeUndefined();
    expect(atClient.got).toEqual([{ type: 'one' }, { type: 'two' }]);
    // Closing twice, or sending after close, is harmless.
    server.close();
    server.send({ type: 'late' });
    client.close();
  });

  it('onClose registered after a deliberate close is called at once with undefined', async () => {
    const { server, client } = await pair();
    const c = closed(client);
    server.close();
    await c;
    expect(await closed(client)).toBeUndefined();
    expect(await closed(server)).toBeUndefined();
  });

  it('a socket destroyed without goodbye (a crash) is a loss: EDDY_WORKER_CRASHED naming the peer', async () => {
    const { server, client } = await pair();
    const atClient = closed(client);
    server.destroy();
    const error = await atClient;
    expect(error).toBeInstanceOf(EddyError);
    expect(error!.code).toBe('EDDY_WORKER_CRASHED');
    // A FIN, or a reset when a ping was unread in the destroyed socket's buffer.
    expect(error!.message).toMatch(
      /^the server( closed the connection|: connection failed: .*ECONNRESET)$/,
    );
    expect(error!.retriable).toBe(true);
  });

  // A handler registered after the connection was lost is told why, not that it was closed.
  it('onClose registered after a loss gets the loss, not undefined', async () => {
    const { server, client } = await pair();
    const first = closed(client);
    server.destroy();
    expect((await first)!.code).toBe('EDDY_WORKER_CRASHED');
    const late = await closed(client);
    expect(late?.code).toBe('EDDY_WORKER_CRASHED');
  });
});

describe('ControlConnection: a stalled event loop', () => {
  // After this side's own event loop was blocked longer than timeoutMs, timers run before the
  // pending socket reads: without care the side would report a healthy peer lost (its pings
  // wait in the kernel buffer), and a master stalled by GC would drop every worker.
  it('a healthy peer is not reported lost after this side blocked for 2x timeoutMs', async () => {
    const { server, client } = await pair(HB);
    const atServer = inbox(server);
    const until = Date.now() + 2 * HB.timeoutMs;
    while (Date.now() < until); // block the event loop (both ends live in this process)
    client.send({ type: 'after-stall' });
    const lost = closed(server).then((e) => Promise.reject(e ?? new Error('closed')));
    expect(await Promise.race([atServer.next(1), lost])).toEqual([{ type: 'after-stall' }]);
    expect(server.closed).toBe(false);
    expect(client.closed).toBe(false);
    client.close();
  });
});

describe('ControlConnection: corrupt streams', () => {
  const serverOf = async () => {
    const { port, accepted } = await listen();
    const raw = await rawClient(port);
    const server = new ControlConnection<Msg, Msg>(await accepted, 'foreign peer', CALM);
    const messages = inbox(server);
    return { raw, server, messages };
  };

  it('a length over the maximum is EDDY_WIRE_FORMAT naming the peer, and the socket is dropped', async () => {
    const { raw, server } = await serverOf();
    const rawClosed = new Promise((r) => raw.once('close', r));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(0x20000000, 0); // 512 MiB: over the 256 MiB limit
    raw.write(length);
    const error = await closed(server);
    expect(error!.code).toBe('EDDY_WIRE_FORMAT');
    expect(error!.message).toMatch(/foreign peer announced a frame of 536870912 bytes/);
    expect(error!.message).toMatch(/over the maximum/);
    await rawClosed;
  });

  it('an undecodable frame is EDDY_WIRE_FORMAT naming the peer', async () => {
    const { raw, server, messages } = await serverOf();
    // 0xd9: a str8 whose length byte is missing.
    raw.write(frame(Uint8Array.from([0xd9])));
    const error = await closed(server);
    expect(error!.code).toBe('EDDY_WIRE_FORMAT');
    expect(error!.message).toMatch(/^foreign peer sent an undecodable message/);
    expect(messages.got).toEqual([]);
  });

  it('good frames before the garbage are delivered', async () => {
    const { raw, server, messages } = await serverOf();
    raw.write(
      Buffer.concat([frame(packr.pack({ type: 'ok', n: 1 })), frame(Uint8Array.from([0xd9]))]),
    );
    const error = await closed(server);
    expect(error!.code).toBe('EDDY_WIRE_FORMAT');
    expect(messages.got).toEqual([{ type: 'ok', n: 1 }]);
  });

  // Nothing is delivered after the connection ended: here a good frame after a bad one in the
  // same chunk.
  it('delivers nothing after the connection ended (garbage, then a good frame)', async () => {
    const { raw, server, messages } = await serverOf();
    raw.write(
      Buffer.concat([
        frame(packr.pack({ type: 'ok', n: 1 })),
        frame(Uint8Array.from([0xd9])),
        frame(packr.pack({ type: 'ok', n: 2 })),
      ]),
    );
    expect((await closed(server))!.code).toBe('EDDY_WIRE_FORMAT');
    expect(messages.got).toEqual([{ type: 'ok', n: 1 }]);
  });

  // A foreign peer sending valid msgpack that is not a message is a wire-format error, not a
  // crashed worker.
  it('a frame of valid msgpack that is not a message (nil) is EDDY_WIRE_FORMAT', async () => {
    const { raw, server, messages } = await serverOf();
    raw.write(frame(packr.pack(null)));
    const error = await closed(server);
    expect(error!.code).toBe('EDDY_WIRE_FORMAT');
    expect(messages.got).toEqual([]);
  });

  it('a stream cut mid-frame without goodbye is a loss', async () => {
    const { raw, server } = await serverOf();
    const length = Buffer.alloc(6);
    length.writeUInt32BE(100, 0);
    raw.end(length);
    const error = await closed(server);
    expect(error!.code).toBe('EDDY_WORKER_CRASHED');
    expect(error!.message).toBe('foreign peer closed the connection');
  });
});

describe('openConnection', () => {
  it('rejects with EDDY_CLUSTER naming the address when nothing listens', async () => {
    const { port } = await listen();
    await new Promise((r) => servers.pop()!.close(r));
    const e = await openConnection('127.0.0.1', port, 'master').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(EddyError);
    expect((e as EddyError).code).toBe('EDDY_CLUSTER');
    expect((e as EddyError).message).toContain(`cannot reach the eddy master at 127.0.0.1:${port}`);
    expect((e as EddyError).message).toContain(`eddy master --port ${port}`);
  });
});

describe('parseAddress', () => {
  it.each([
    ['127.0.0.1:6123', '127.0.0.1', 6123],
    ['localhost:1', 'localhost', 1],
    ['master.example.com:65535', 'master.example.com', 65535],
    ['[::1]:6123', '::1', 6123],
    ['[fe80::1%eth0]:80', 'fe80::1%eth0', 80],
  ])('accepts %s', (address, host, port) => {
    expect(parseAddress(address)).toEqual({ host, port });
  });

  it.each([
    '',
    '6123',
    ':6123',
    'host',
    'host:',
    'host:0',
    'host:65536',
    'host:-1',
    'host:12.5',
    'host:abc',
    '[::1]',
  ])('rejects %j with EDDY_INVALID_ARGUMENT naming the flag and the value', (address) => {
    const e = (() => {
      try {
        parseAddress(address);
      } catch (x) {
        return x;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(EddyError);
    expect((e as EddyError).code).toBe('EDDY_INVALID_ARGUMENT');
    expect((e as EddyError).message).toBe(
      `--master must be host:port (e.g. 127.0.0.1:6123), got '${address}'`,
    );
  });

  it('names the flag it is given', () => {
    expect(() => parseAddress('nope', '--peer')).toThrow(/^--peer must be host:port .*got 'nope'/);
  });
});
