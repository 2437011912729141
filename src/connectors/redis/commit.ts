/**
 * The sink's atomic, idempotent commit of one chunk of output: a Lua script that checks the
 * commit marker, XADDs the chunk's entries and advances the marker, all in one step (a
 * script runs atomically in Redis: no other command runs in between, so the check and the
 * write cannot be separated by another committer, and no WATCH retry loop is needed).
 *
 * The marker: hash `markerKey`, field = the *writer id* that produced the chunk, value
 * `<checkpointId>:<chunk>` of the last chunk committed. Chunks of one writer are committed
 * in (checkpoint, chunk) order, so a chunk at or below the marker was committed before and
 * is skipped: a replayed commit (a restore of a checkpoint whose commit already happened, a
 * retry after a lost reply) writes nothing.
 *
 * Hazard: Redis does not roll back a script that fails midway, so everything that could fail
 * is checked before the first write (every key must be a stream or absent). An out-of-memory
 * server (maxmemory) refuses the script before it runs.
 */
import type { Redis } from 'ioredis';

/**
 * KEYS[1] marker hash, KEYS[2..] the chunk's streams. ARGV[1] writer id, ARGV[2] checkpoint
 * id, ARGV[3] chunk index, then per entry: stream number (1-based into the streams), field
 * count n (names and values), n strings. Returns 1 when written, 0 when already committed.
 */
export const COMMIT_SCRIPT = `
local done = redis.call('HGET', KEYS[1], ARGV[1])
if done then
  local c, k = string.match(done, '^(%d+):(%d+)$')
  local cp, chunk = tonumber(ARGV[2]), tonumber(ARGV[3])
  c, k = tonumber(c), tonumber(k)
  if c ~= nil and (c > cp or (c == cp and k >= chunk)) then return 0 end
end
for i = 2, #KEYS do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t ~= 'stream' and t ~= 'none' then
    return redis.error_reply('WRONGTYPE key ' .. KEYS[i] .. ' holds a ' .. t .. ', not a stream')
  end
end
local i = 4
while i <= #ARGV do
  local key = KEYS[tonumber(ARGV[i]) + 1]
  local n = tonumber(ARGV[i + 1])
  redis.call('XADD', key, '*', unpack(ARGV, i + 2, i + 1 + n))
  i = i + 2 + n
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
return 1
`;

/**
 * One chunk of a writer's output for one checkpoint, as stored in operator state and passed
 * to the script: `entries` is flat, per entry `stream number (1-based), n, n strings`.
 */
export interface PendingChunk {
  checkpointId: number;
  /** 0, 1, … within the checkpoint. */
  chunk: number;
  streams: string[];
  entries: (string | number)[];
  /** Number of entries (for metrics). */
  count: number;
}

/**
 * Whether the chunk (checkpointId, chunk) is at or below the marker value `done`: committed
 * before. The script's check, in TypeScript (for tests and documentation).
 *
 * @example
 * isCommitted('7:2', 7, 1); // true
 * isCommitted('7:2', 8, 0); // false
 */
export const isCommitted = (done: string | null, checkpointId: number, chunk: number): boolean => {
  if (done === null) return false;
  const m = /^(\d+):(\d+)$/.exec(done);
  if (m === null) return false;
  const c = Number(m[1]);
  const k = Number(m[2]);
  return c > checkpointId || (c === checkpointId && k >= chunk);
};

interface Committer {
  eddyCommit(...args: (string | number)[]): Promise<number>;
}

/** Registers the script on a client (EVALSHA, falling back to EVAL once per connection). */
export const defineCommit = (client: Redis): void => {
  if (!('eddyCommit' in client)) client.defineCommand('eddyCommit', { lua: COMMIT_SCRIPT });
};

/** Runs the commit script for `chunk` of `writer`; resolves true when it wrote. */
export const runCommit = async (
  client: Redis,
  markerKey: string,
  writer: string,
  chunk: PendingChunk,
): Promise<boolean> => {
  const c = client as unknown as Committer;
  const written = await c.eddyCommit(
    1 + chunk.streams.length,
    markerKey,
    ...chunk.streams,
    writer,
    chunk.checkpointId,
    chunk.chunk,
    ...chunk.entries,
  );
  return written === 1;
};

/**
 * Builds chunks from records: at most `maxEntries` entries or about `maxBytes` of strings
 * each, so one script (which blocks the server while it runs) stays short.
 */
export class ChunkBuilder {
  private streams: string[] = [];
  private streamNo = new Map<string, number>();
  private entries: (string | number)[] = [];
  private count = 0;
  private bytes = 0;
  /** Chunks sealed since the last `take`, not labelled with a checkpoint yet. */
  private sealed: Omit<PendingChunk, 'checkpointId' | 'chunk'>[] = [];

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  /** Adds one entry: `fields` is flat (name, value, …), at least one pair. */
  add(stream: string, fields: string[], bytes: number): void {
    let no = this.streamNo.get(stream);
    if (no === undefined) {
      this.streams.push(stream);
      no = this.streams.length;
      this.streamNo.set(stream, no);
    }
    this.entries.push(no, fields.length);
    for (const f of fields) this.entries.push(f);
    this.count++;
    this.bytes += bytes;
    if (this.count >= this.maxEntries || this.bytes >= this.maxBytes) this.seal();
  }

  /** Entries added since the last `take`. */
  get size(): number {
    let n = this.count;
    for (const c of this.sealed) n += c.count;
    return n;
  }

  private seal(): void {
    if (this.count === 0) return;
    this.sealed.push({ streams: this.streams, entries: this.entries, count: this.count });
    this.streams = [];
    this.streamNo = new Map();
    this.entries = [];
    this.count = 0;
    this.bytes = 0;
  }

  /** Seals what was added and returns it as chunks 0, 1, … of `checkpointId`. */
  take(checkpointId: number, firstChunk = 0): PendingChunk[] {
    this.seal();
    const out = this.sealed.map((c, i) => ({ checkpointId, chunk: firstChunk + i, ...c }));
    this.sealed = [];
    return out;
  }

  /** Drops everything added since the last `take`. */
  clear(): void {
    this.take(0);
  }
}
