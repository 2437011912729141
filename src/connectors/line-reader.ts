/**
 * Chunked, resumable line reading with byte-accurate positions.
 *
 * The hot path is `next()`: one `indexOf(10)` over a reused buffer and one UTF-8 decode of the
 * line's byte range. Decoding whole-line ranges (never chunks) is what keeps multibyte
 * characters split across chunk boundaries intact. Optional fast path: for a pure-ASCII
 * buffer, one string per chunk and O(1) slices of it per line (see `shareChunkStrings`).
 */
import { isAscii } from 'node:buffer';
import { type FileHandle, open } from 'node:fs/promises';

/** Default bytes per read: big reads amortise the syscall and promise per chunk. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;

export interface LineReaderOptions {
  /** Byte offset where reading starts; must be a line start (0 or just after a `\n`). */
  offset?: number;
  /** Lines already consumed before `offset`, so line numbers continue (1-based). */
  line?: number;
  /** Bytes per read. The buffer grows beyond this only to hold a longer line. */
  chunkBytes?: number;
  /**
   * When the buffered bytes are all ASCII, decode them once per chunk and return lines as
   * slices of that string (about 20% faster than decoding each line). Hazard: a slice keeps
   * the whole chunk string (~chunkBytes) alive while anything references it, so enable this
   * only when the consumer keeps no substrings of a line (JSON.parse copies its strings;
   * `split`/`slice` do not). Default false.
   */
  shareChunkStrings?: boolean;
}

type Utf8Decoder = (buf: Buffer, start: number, end: number) => string;

// `utf8Slice` is Node's internal fast path behind `toString('utf8', ...)`; it skips the
// argument normalisation. Feature-detected so a runtime without it still works.
const hasUtf8Slice =
  typeof (Buffer.prototype as unknown as { utf8Slice?: unknown }).utf8Slice === 'function';
const decodeUtf8: Utf8Decoder = hasUtf8Slice
  ? (buf, start, end) =>
      (buf as unknown as { utf8Slice(s: number, e: number): string }).utf8Slice(start, end)
  : (buf, start, end) => buf.toString('utf8', start, end);

const LF = 10;
const CR = 13;

/**
 * Reads a file line by line from a byte offset. Lines end with `\n` or `\r\n`; the last line
 * may lack a terminator. Empty lines are skipped but counted, so `line` is always the 1-based
 * number of the last line consumed and `offset` the byte offset of the next line start:
 * `(offset, line)` is a resumable position.
 *
 * Protocol: call `next()` until it returns `null` (`exhausted`), then `fill()`; once `eof` is
 * set and `next()` returns `null`, the file is done. Never call `next()` while `fill()` runs.
 *
 * @example
 * const r = await LineReader.open('data.jsonl');
 * for (;;) {
 *   const text = r.next();
 *   if (text !== null) { console.log(r.line, text); continue; }
 *   if (r.eof) break;
 *   await r.fill();
 * }
 * await r.close();
 */
export class LineReader {
  /** 1-based number of the last line consumed (returned or skipped as empty). */
  line: number;
  /** True once a read returned no bytes: what is buffered is all that is left. */
  eof = false;
  /** True when `next()` found no complete line in the buffer: call `fill()` next. */
  exhausted = true;
  /** Bytes read from the file so far by this reader (for metrics). */
  bytesRead = 0;

  private buf: Buffer;
  /** `buf` limited to the valid bytes, so `indexOf` never finds stale data past `end`. */
  private view: Buffer;
  private pos = 0;
  private end = 0;
  /** File offset of `buf[0]`. */
  private bufStart: number;
  /** A UTF-8 byte order mark may still have to be skipped (only when reading from 0). */
  private bomPending: boolean;
  private closed = false;
  private readonly shareChunkStrings: boolean;
  /** With `shareChunkStrings`: the ASCII buffer from `strBase` to `end` as one string. */
  private str: string | undefined;
  private strBase = 0;

  private constructor(
    private readonly fh: FileHandle,
    offset: number,
    line: number,
    chunkBytes: number,
    shareChunkStrings: boolean,
  ) {
    this.shareChunkStrings = shareChunkStrings;
    this.buf = Buffer.allocUnsafe(chunkBytes);
    this.view = this.buf.subarray(0, 0);
    this.bufStart = offset;
    this.line = line;
    this.bomPending = offset === 0;
  }

  /**
   * Opens `path` for reading at `options.offset`. Rejects with the file system's error when
   * the file cannot be opened, or when the offset lies past the end of the file (the file
   * shrank since the position was recorded).
   */
  static async open(path: string, options: LineReaderOptions = {}): Promise<LineReader> {
    const offset = options.offset ?? 0;
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`line reader offset must be a non-negative integer, got ${offset}`);
    }
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) {
      throw new RangeError(`line reader chunkBytes must be a positive integer, got ${chunkBytes}`);
    }
    const fh = await open(path, 'r');
    try {
      if (offset > 0) {
        const { size } = await fh.stat();
        if (offset > size) {
          throw new RangeError(
            `position ${offset} is past the end of ${path} (${size} bytes): the file changed`,
          );
        }
      }
    } catch (e) {
      await fh.close();
      throw e;
    }
    const share = options.shareChunkStrings ?? false;
    return new LineReader(fh, offset, options.line ?? 0, chunkBytes, share);
  }

  /** Byte offset of the start of the next unconsumed line. */
  get offset(): number {
    return this.bufStart + this.pos;
  }

  /**
   * The next non-empty line (without its terminator), or `null` when the buffer holds no
   * complete line: then `fill()`, unless `eof`.
   */
  next(): string | null {
    const str = this.str;
    if (str !== undefined) return this.nextInChunk(str);
    const view = this.view;
    let pos = this.pos;
    for (;;) {
      const nl = view.indexOf(LF, pos);
      if (nl === -1) return this.tail(pos);
      this.line++;
      const start = pos;
      const end = nl > start && view[nl - 1] === CR ? nl - 1 : nl;
      pos = nl + 1;
      if (end > start) {
        this.pos = pos;
        return this.decode(start, end);
      }
    }
  }

  /**
   * `next()` over the ASCII chunk string: `String.indexOf` is inlined by V8, where
   * `Buffer.indexOf` is a call into C++ per line (~10% of the per-line cost of a short
   * JSON line). String index `i` is byte offset `strBase + i` (ASCII).
   */
  private nextInChunk(str: string): string | null {
    const base = this.strBase;
    let at = this.pos - base;
    for (;;) {
      const nl = str.indexOf('\n', at);
      if (nl === -1) return this.tail(at + base);
      this.line++;
      const start = at;
      const end = nl > start && str.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
      at = nl + 1;
      if (end > start) {
        this.pos = at + base;
        return str.slice(start, end);
      }
    }
  }

  private decode(start: number, end: number): string {
    const str = this.str;
    if (str === undefined) return decodeUtf8(this.view, start, end);
    return str.slice(start - this.strBase, end - this.strBase);
  }

  /** No `\n` after `pos`: at end of file the rest is the last line, otherwise wait for more. */
  private tail(pos: number): string | null {
    const end = this.end;
    if (this.eof && pos < end) {
      this.line++;
      this.pos = end;
      const last = this.view[end - 1] === CR ? end - 1 : end;
      if (last > pos) return this.decode(pos, last);
    } else {
      // Empty lines skipped on the way here are consumed: keep `offset` past them.
      this.pos = pos;
    }
    this.exhausted = true;
    return null;
  }

  /**
   * Reads the next chunk after the buffered bytes. Keeps the unconsumed partial line (moved to
   * the front) and doubles the buffer when one line fills it. Resolves with the bytes read;
   * 0 means end of file.
   */
  async fill(): Promise<number> {
    if (this.eof) return 0;
    this.compact();
    const { bytesRead } = await this.fh.read(
      this.buf,
      this.end,
      this.buf.length - this.end,
      this.bufStart + this.end,
    );
    if (bytesRead === 0) this.eof = true;
    this.bytesRead += bytesRead;
    this.end += bytesRead;
    this.view = this.buf.subarray(0, this.end);
    if (this.bomPending) this.skipBom();
    if (this.shareChunkStrings) this.decodeChunk();
    this.exhausted = bytesRead === 0 && this.pos >= this.end;
    return bytesRead;
  }

  /**
   * ASCII bytes are latin1 characters one to one, so string indexes equal byte offsets and a
   * line is a plain slice. Any non-ASCII byte: decode per line instead (UTF-8 needs that).
   */
  private decodeChunk(): void {
    const unread = this.view.subarray(this.pos);
    this.strBase = this.pos;
    this.str = isAscii(unread) ? unread.toString('latin1') : undefined;
  }

  private compact(): void {
    if (this.pos > 0) {
      this.buf.copy(this.buf, 0, this.pos, this.end);
      this.bufStart += this.pos;
      this.end -= this.pos;
      this.pos = 0;
    }
    if (this.end === this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, 0, this.end);
      this.buf = bigger;
    }
  }

  /**
   * A UTF-8 BOM (EF BB BF) at file offset 0 is not part of the first line: without this a
   * CSV header's first column or a JSON line would start with U+FEFF. Decided once 3 bytes
   * (or EOF) are buffered; until then no `\n` can have been consumed past it.
   */
  private skipBom(): void {
    const v = this.view;
    const prefixMatches =
      (v.length < 1 || v[0] === 0xef) &&
      (v.length < 2 || v[1] === 0xbb) &&
      (v.length < 3 || v[2] === 0xbf);
    if (!prefixMatches) {
      this.bomPending = false;
    } else if (v.length >= 3) {
      this.bomPending = false;
      if (this.bufStart === 0 && this.pos === 0) this.pos = 3;
    } else if (this.eof) {
      this.bomPending = false;
    }
  }

  /** Closes the file; safe to call more than once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

/**
 * The first non-empty line of a file (e.g. a CSV header, needed again when resuming mid-file),
 * with its 1-based line number; `undefined` for a file with no non-empty line.
 *
 * @example
 * const header = await readFirstLine('data.csv'); // { text: 'id,name', line: 1 }
 */
export const readFirstLine = async (
  path: string,
  chunkBytes = 64 * 1024,
): Promise<{ text: string; line: number } | undefined> => {
  const reader = await LineReader.open(path, { chunkBytes });
  try {
    return await takeLine(reader);
  } finally {
    await reader.close();
  }
};

/**
 * Pulls the next non-empty line, filling as needed; `undefined` at end of file.
 *
 * @example
 * const header = await takeLine(reader); // { text: 'id,name', line: 1 }
 */
export const takeLine = async (
  reader: LineReader,
): Promise<{ text: string; line: number } | undefined> => {
  for (;;) {
    const text = reader.next();
    if (text !== null) return { text, line: reader.line };
    if (reader.eof) return undefined;
    await reader.fill();
  }
};
