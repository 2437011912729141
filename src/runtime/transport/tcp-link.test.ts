import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import type { StreamElement } from '../../core/elements.js';
import { END_OF_INPUT } from '../../core/elements.js';
import type { EddyError } from '../../core/errors.js';
import { checkpointId } from '../../core/ids.js';
import type { ChannelSpec } from '../plan.js';
import { ChannelWriter } from './channel-writer.js';
import { Exchange, type PeerLink } from './exchange.js';
import { InputGate } from './input-gate.js';
import { MessagePortLink } from './message-port-link.js';
import {
  connectToPeer,
  listenForPeers,
  type PeerIdentity,
  type PeerListener,
  type TcpPeerLink,
} from './tcp-link.js';

const HOST = '127.0.0.1';
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A listener for worker 1 and a link 0 -> 1 through it; both ends. */
const pair = async (listenExtra: Partial<PeerIdentity> = {}, token = 'job-a/1') => {
  const listener = await listenForPeers({
    host: HOST,
    port: 0,
    token,
    workerIndex: 1,
    ...listenExtra,
  });
  cleanup.push(() => listener.close());
  const [a, b] = await Promise.all([
    connectToPeer({ host: HOST, port: listener.port, token, workerIndex: 0, peerIndex: 1 }),
    listener.accept(0),
  ]);
  cleanup.push(() => {
    a.close();
    b.close();
  });
  return { listener, a, b };
};

const numbered = (seq: number, size: number): Uint8Array => {
  const f = new Uint8Array(size);
  new DataView(f.buffer).setUint32(0, seq);
  f[size - 1] = seq & 0xff;
  return f;
};

const seqOf = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(0);

/** Resolves when `cond` holds, polling on timers (no fixed sleeps). */
const until = async (cond: () => boolean, what: string, ms = 20_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

const firstError = (link: TcpPeerLink) =>
  new Promise<EddyError>((resolve) => link.onError(resolve));

describe('TcpPeerLink', () => {
  it('carries frames both ways, in order, and closes cleanly without errors', async () => {
    const { a, b } = await pair();
    // Frames are kept as received (views into socket chunks): a reused read buffer would show.
    const atB: Uint8Array[] = [];
    const atA: Uint8Array[] = [];
    const errors: EddyError[] = [];
    a.onError((e) => errors.push(e));
    b.onError((e) => errors.push(e));
    b.onFrame((f) => atB.push(f));
    a.onFrame((f) => atA.push(f));
    for (let i = 0; i < 1000; i++) a.send(numbered(i, 8 + (i % 50)));
    for (let i = 0; i < 10; i++) b.send(numbered(i, 8));
    await until(() => atB.length === 1000 && atA.length === 10, 'frames');
    expect(atB.map(seqOf)).toEqual([...Array(1000).keys()]);
    expect(atB.map((f) => [f.byteLength, f[f.byteLength - 1]])).toEqual(
      [...Array(1000).keys()].map((i) => [8 + (i % 50), i & 0xff]),
    );
    expect(atA.map(seqOf)).toEqual([...Array(10).keys()]);
    a.close();
    b.close();
    await Promise.all([a.closed, b.closed]);
    expect(errors).toEqual([]);
  });

  it('batches the frames of one synchronous stretch into one socket write', async () => {
    const { a, b } = await pair();
    const got: number[] = [];
    b.onFrame((f) => got.push(seqOf(f)));
    for (let i = 0; i < 500; i++) a.send(numbered(i, 16));
    expect(a.backlog).toBe(500);
    await Promise.resolve();
    expect(a.backlog).toBe(0);
    expect(a.bytesWritten).toBe(500 * 20);
    await until(() => got.length === 500, 'frames');
  });

  it('carries big frames intact', async () => {
    const { a, b } = await pair();
    const sizes = [5_000_000, 17, 12_345_678, 65_536, 1];
    const frames = sizes.map((n, i) => {
      const f = numbered(i, Math.max(n, 4));
      for (let j = 4; j < f.length; j += 4093) f[j] = (j ^ i) & 0xff;
      return f;
    });
    const got: Uint8Array[] = [];
    b.onFrame((f) => got.push(Uint8Array.from(f)));
    for (const f of frames) a.send(f);
    await until(() => got.length === frames.length, 'big frames');
    expect(got.map((g, i) => Buffer.compare(g, frames[i]!))).toEqual(sizes.map(() => 0));
  });

  it('refuses a frame over the maximum with a wire-format error naming the peer', async () => {
    const { a, b } = await pair({ maxFrameBytes: 1024 });
    const error = firstError(b);
    b.onFrame(() => {});
    a.send(new Uint8Array(2048));
    const e = await error;
    expect(e).toMatchObject({ code: 'EDDY_WIRE_FORMAT', retriable: false });
    expect(e.message).toMatch(/worker 0 at 127\.0\.0\.1:\d+ announced a frame of 2048 bytes/);
  });

  it('keeps every frame in order under backpressure (~200 MB while the reader pauses)', async () => {
    const { a, b } = await pair();
    const n = 3200;
    const size = 64 * 1024;
    for (let i = 0; i < n; i++) a.send(numbered(i, size));
    // The receiver registers no handler yet, so it stops reading: the sender must hold frames.
    await until(() => a.backlog > 0, 'backpressure at the sender');
    let next = 0;
    let bad = 0;
    b.onFrame((f) => {
      if (seqOf(f) !== next || f.byteLength !== size || f[size - 1] !== (next & 0xff)) bad++;
      next++;
    });
    await until(() => next === n, 'all frames after backpressure', 50_000);
    expect(bad).toBe(0);
    expect(a.backlog).toBe(0);
  });

  it('refuses a connection with another job/attempt token on both sides', async () => {
    const listener = await listenForPeers({
      host: HOST,
      port: 0,
      token: 'job-a/2',
      workerIndex: 1,
    });
    cleanup.push(() => listener.close());
    const refusals: EddyError[] = [];
    listener.onRefused((e) => refusals.push(e));
    const attempt = connectToPeer({
      host: HOST,
      port: listener.port,
      token: 'job-a/1',
      workerIndex: 0,
      peerIndex: 1,
    });
    await expect(attempt).rejects.toMatchObject({
      code: 'EDDY_WIRE_FORMAT',
      message: expect.stringMatching(/refused: .*token mismatch .*earlier attempt/),
    });
    await until(() => refusals.length === 1, 'refusal at the listener');
    expect(refusals[0]!.message).toMatch(/worker 1 refused a connection from 127\.0\.0\.1:\d+/);
  });

  it('refuses a wrong target index and a second connection from one worker', async () => {
    const { listener } = await pair();
    const opts = { host: HOST, port: listener.port, token: 'job-a/1' };
    await expect(connectToPeer({ ...opts, workerIndex: 0, peerIndex: 2 })).rejects.toThrow(
      /meant to reach worker 2, this is worker 1/,
    );
    await expect(connectToPeer({ ...opts, workerIndex: 0, peerIndex: 1 })).rejects.toThrow(
      /worker 0 is already connected/,
    );
    await expect(connectToPeer({ ...opts, workerIndex: 3, peerIndex: 1 })).rejects.toThrow(
      /the lower index connects/,
    );
  });

  it('refuses another protocol version and a foreign program', async () => {
    const listener = await listenForPeers({ host: HOST, port: 0, token: 't', workerIndex: 1 });
    cleanup.push(() => listener.close());
    const refusals: EddyError[] = [];
    listener.onRefused((e) => refusals.push(e));
    // A HELLO of version 99: magic, u16 version, type, worker, peer, token.
    const hello = Buffer.concat([Buffer.from('EDDY'), Buffer.from([0, 99, 1, 0, 0, 0, 0])]);
    const body = Buffer.concat([hello, Buffer.from([0, 0, 0, 1]), Buffer.from('t')]);
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(body.length);
    const reply = await rawExchange(listener, Buffer.concat([prefix, body]));
    expect(reply).toMatch(/protocol version 99, this process speaks version 1/);
    await rawExchange(listener, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await until(() => refusals.length === 2, 'two refusals');
    expect(refusals[0]!.message).toMatch(/protocol version 99/);
    expect(refusals[1]).toMatchObject({ code: 'EDDY_WIRE_FORMAT' });
    expect(refusals[1]!.message).toMatch(/announced a frame of \d+ bytes/);
  });

  it('rejects a pending accept when the listener closes', async () => {
    const listener = await listenForPeers({ host: HOST, port: 0, token: 't', workerIndex: 1 });
    const pending = listener.accept(0, 30_000);
    await listener.close();
    await expect(pending).rejects.toThrow(/stopped listening before worker 0 connected/);
  });

  it('reports an unreachable peer as a retriable lost worker', async () => {
    const listener = await listenForPeers({ host: HOST, port: 0, token: 't', workerIndex: 1 });
    const port = listener.port;
    await listener.close();
    await expect(
      connectToPeer({ host: HOST, port, token: 't', workerIndex: 0, peerIndex: 1 }),
    ).rejects.toMatchObject({
      code: 'EDDY_WORKER_CRASHED',
      retriable: true,
      message: expect.stringContaining(`worker 1 at 127.0.0.1:${port}`),
    });
  });

  it('surfaces a peer killed with kill -9 as a retriable EDDY_WORKER_CRASHED', async () => {
    const listener = await listenForPeers({ host: HOST, port: 0, token: 'k', workerIndex: 1 });
    cleanup.push(() => listener.close());
    const child = spawnPeer(listener.port);
    cleanup.push(() => child.kill('SIGKILL'));
    const link = await listener.accept(0, 30_000);
    const frames: number[] = [];
    link.onFrame((f) => frames.push(seqOf(f)));
    const error = firstError(link);
    await until(() => frames.length === 1, 'the child frame');
    child.kill('SIGKILL');
    const e = await error;
    expect(e).toMatchObject({ code: 'EDDY_WORKER_CRASHED', retriable: true });
    expect(e.message).toMatch(
      /worker 0 at 127\.0\.0\.1:\d+: .*(without saying goodbye|ECONNRESET)/,
    );
  });

  it('does not report a peer that closed on purpose, even while frames are in flight', async () => {
    const { a, b } = await pair();
    const errors: EddyError[] = [];
    b.onError((e) => errors.push(e));
    let got = 0;
    b.onFrame(() => got++);
    for (let i = 0; i < 100; i++) a.send(numbered(i, 1000));
    a.close();
    await until(() => got === 100, 'frames flushed before the close');
    b.close();
    await Promise.all([a.closed, b.closed]);
    expect(errors).toEqual([]);
  });
});

describe('Exchange over TcpPeerLink', () => {
  it('delivers records, watermarks, barriers and end of input exactly as MessagePortLink', async () => {
    const viaPorts = await runTwoWorkers(async () => {
      const { port1, port2 } = new MessageChannel();
      cleanup.push(() => {
        port1.close();
        port2.close();
      });
      return [new MessagePortLink(port1), new MessagePortLink(port2)];
    });
    const viaTcp = await runTwoWorkers(async () => {
      const { a, b } = await pair();
      return [a, b];
    });
    expect(viaTcp).toEqual(viaPorts);
    expect(viaTcp.get(0)).toEqual(expected(0));
    expect(viaTcp.get(1)).toEqual(expected(1));
  });
});

/** Two channels from worker 0 to worker 1 (a 2x1 edge as two subtasks on worker 0). */
const channels: ChannelSpec[] = [0, 1].map((subtask) => ({
  id: subtask,
  edge: 0,
  from: { chain: 0, subtask },
  to: { chain: 1, subtask: 0 },
  fromWorker: 0,
  toWorker: 1,
}));

const expected = (channel: number): StreamElement[] => {
  const out: StreamElement[] = [];
  for (let round = 0; round < 5; round++) {
    for (let b = 0; b < 4; b++) {
      const records = Array.from({ length: 10 }, (_, i) => ({
        key: `k${channel}-${round}-${b * 10 + i}`,
        n: round * 100 + b * 10 + i,
      }));
      out.push({ kind: 'records', records });
    }
    out.push({ kind: 'watermark', timestamp: 1000 * round + channel });
    out.push({
      kind: 'barrier',
      checkpointId: checkpointId(round + 1),
      timestamp: round,
      savepoint: round === 4,
    });
  }
  out.push(END_OF_INPUT);
  return out;
};

/**
 * Worker 0 writes `expected(c)` on both channels through ChannelWriters with little credit;
 * worker 1's gate takes frames one by one and returns credit for each, as a subtask does.
 * Returns what worker 1 received, per channel.
 */
const runTwoWorkers = async (
  links: () => Promise<[PeerLink, PeerLink]>,
): Promise<Map<number, StreamElement[]>> => {
  const [l0, l1] = await links();
  const w0 = new Exchange(0, channels);
  const w1 = new Exchange(1, channels);
  w0.connectPeer(1, l0);
  w1.connectPeer(0, l1);
  const gate = new InputGate(channels);
  for (const c of channels) w1.registerGate(c, gate);
  const writers = channels.map((c) => new ChannelWriter(c, w0, 10, 2));
  for (const w of writers) w0.registerWriter(w);
  const received = new Map<number, StreamElement[]>(channels.map((c) => [c.id, []]));
  const consume = (async () => {
    let ended = 0;
    while (ended < channels.length) {
      const f = await gate.next();
      if (f === undefined) continue;
      received.get(f.channel.id)!.push(f.element);
      if (f.element.kind === 'end') ended++;
      w1.returnCredit(f.channel, 1);
    }
  })();
  const produce = writers.map(async (w, c) => {
    for (const el of expected(c)) {
      if (el.kind === 'records') for (const r of el.records) w.push(r);
      else w.emitControl(el);
      await w.drained();
    }
  });
  await Promise.all([...produce, consume]);
  return received;
};

/** Sends `bytes` on a raw socket; resolves with what came back (as latin1) once it ends. */
const rawExchange = (listener: PeerListener, bytes: Buffer): Promise<string> =>
  new Promise((resolve, reject) => {
    const s = connect({ host: HOST, port: listener.port });
    const back: Buffer[] = [];
    s.on('data', (d) => back.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(back).toString('latin1')));
    s.write(bytes);
  });

/** A child process that connects as worker 0, sends one frame and waits to be killed. */
const spawnPeer = (port: number) => {
  const dir = mkdtempSync(join(tmpdir(), 'eddy-tcp-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'peer.mts');
  const linkUrl = new URL('./tcp-link.ts', import.meta.url).href;
  writeFileSync(
    script,
    `import { connectToPeer } from ${JSON.stringify(linkUrl)};
const link = await connectToPeer({ host: '127.0.0.1', port: ${port}, token: 'k', workerIndex: 0, peerIndex: 1 });
link.send(new Uint8Array(8));
setInterval(() => {}, 1000);
`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    stdio: ['ignore', 'ignore', 'inherit'],
    cwd: process.cwd(),
  });
  return child;
};
