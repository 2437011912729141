/**
 * Bytes of one block: msgpack, self-contained. Pure; no I/O.
 *
 * Record extension: ON, but without shared structures and not sequential, so every record
 * definition a block uses is inline in that block and each block decodes on its own, in any
 * order, with any decoder instance (tested). Records stay on because with them off msgpackr
 * decodes every msgpack map as a plain object: a user's `Map` value (e.g. a ValueState holding
 * a Map) would silently come back as an object with string keys. With records on, objects
 * travel as records and `Map`s as msgpack maps, and both come back as what they were.
 *
 * Two encoders write these bytes: msgpackr's `Packr` (any value), and {@link MsgpackWriter}, a
 * hand-rolled writer for the common case of arrays, strings, numbers, booleans and null that
 * writes exactly the bytes `Packr` writes for them (tested byte for byte), several times
 * faster and without building the value first. Blocks are always decoded by `Packr`.
 *
 * Fidelity hazards (msgpackr): -0 decodes as 0; class instances come back as plain objects;
 * functions and symbols are not state and are not supported.
 */

import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';

// copyBuffers: binary values must not be views into the (large) read buffer, or one tiny
// restored Uint8Array would keep a whole coalesced read alive.
const packr = new Packr({ moreTypes: true, copyBuffers: true });

/**
 * Encodes one block. Hazard: the result may be a view into msgpackr's shared output buffer;
 * copy or write it before it is kept anywhere.
 */
export const packBlock = (value: unknown): Uint8Array => packr.pack(value);

/** Decodes one block; throws (msgpackr's error) when the bytes are not one msgpack value. */
export const unpackBlock = (bytes: Uint8Array): unknown => packr.unpack(bytes);

/** CRC-32 (IEEE, as zlib/gzip) of `bytes`, unsigned. zlib's own (native) implementation. */
export const blockCrc = (bytes: Uint8Array): number => crc32(bytes) >>> 0;

/** Deepest array nesting {@link MsgpackWriter.value} writes itself; deeper goes to Packr. */
const MAX_FAST_DEPTH = 8;

/**
 * Appends msgpack to one growing buffer, byte-identical to what this module's `Packr` writes
 * for the same values (so blocks written either way are the same format, and the same bytes).
 * Covers arrays (plain `Array`s), strings, numbers, booleans and null; {@link value} reports
 * anything else so that the caller can fall back to {@link packBlock}.
 *
 * Byte rules copied from msgpackr 2.1 (pack.js), which its records setting makes non-standard
 * in one place: 0x40–0x7f are record references, so positive integers from 0x40 use uint8,
 * never a positive fixint. Integers beyond 32 bits, fractions and NaN are float64. Strings
 * under 0x40 UTF-16 units are encoded by a JS loop that keeps lone surrogates (as msgpackr's
 * does); longer ones by Buffer's UTF-8 encoder (as msgpackr's does).
 */
export class MsgpackWriter {
  private buf: Buffer;
  private view: DataView;
  private pos = 0;

  constructor(initialBytes = 1 << 20) {
    this.buf = Buffer.allocUnsafe(initialBytes);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  /** Bytes written since the last {@link reset}. */
  get length(): number {
    return this.pos;
  }

  /** Forgets what was written; the buffer is kept for the next values. */
  reset(): void {
    this.pos = 0;
  }

  /** Drops what was written after the first `length` bytes (e.g. a value given up on). */
  truncate(length: number): void {
    if (length < this.pos) this.pos = length;
  }

  /**
   * The bytes written from `start` (default: since the last reset): a view, valid until the
   * next write or reset.
   */
  bytes(start = 0): Buffer {
    return this.buf.subarray(start, this.pos);
  }

  /** Appends bytes as they are (e.g. a value encoded elsewhere). */
  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Array header for `length` elements (the elements follow). */
  arrayHeader(length: number): void {
    this.ensure(5);
    const b = this.buf;
    if (length < 0x10) {
      b[this.pos++] = 0x90 | length;
    } else if (length < 0x10000) {
      b[this.pos++] = 0xdc;
      b[this.pos++] = length >> 8;
      b[this.pos++] = length & 0xff;
    } else {
      b[this.pos++] = 0xdd;
      this.view.setUint32(this.pos, length);
      this.pos += 4;
    }
  }

  nil(): void {
    this.ensure(1);
    this.buf[this.pos++] = 0xc0;
  }

  boolean(v: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = v ? 0xc3 : 0xc2;
  }

  number(v: number): void {
    this.ensure(9);
    const b = this.buf;
    if (v >>> 0 === v) {
      if (v < 0x40) {
        b[this.pos++] = v;
      } else if (v < 0x100) {
        b[this.pos++] = 0xcc;
        b[this.pos++] = v;
      } else if (v < 0x10000) {
        b[this.pos++] = 0xcd;
        b[this.pos++] = v >> 8;
        b[this.pos++] = v & 0xff;
      } else {
        b[this.pos++] = 0xce;
        this.view.setUint32(this.pos, v);
        this.pos += 4;
      }
    } else if (v >> 0 === v) {
      if (v >= -0x20) {
        b[this.pos++] = 0x100 + v;
      } else if (v >= -0x80) {
        b[this.pos++] = 0xd0;
        b[this.pos++] = v + 0x100;
      } else if (v >= -0x8000) {
        b[this.pos++] = 0xd1;
        this.view.setInt16(this.pos, v);
        this.pos += 2;
      } else {
        b[this.pos++] = 0xd2;
        this.view.setInt32(this.pos, v);
        this.pos += 4;
      }
    } else {
      b[this.pos++] = 0xcb;
      this.view.setFloat64(this.pos, v);
      this.pos += 8;
    }
  }

  string(s: string): void {
    const units = s.length;
    // Header size guessed from the UTF-16 length, fixed up below if the UTF-8 length needs more.
    const guess = units < 0x20 ? 1 : units < 0x100 ? 2 : units < 0x10000 ? 3 : 5;
    this.ensure(units * 3 + 5);
    const b = this.buf;
    const start = this.pos;
    let length: number;
    if (units < 0x40) {
      let p = start + guess;
      for (let i = 0; i < units; i++) {
        let c1 = s.charCodeAt(i);
        if (c1 < 0x80) {
          b[p++] = c1;
        } else if (c1 < 0x800) {
          b[p++] = (c1 >> 6) | 0xc0;
          b[p++] = (c1 & 0x3f) | 0x80;
        } else if ((c1 & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
          c1 = 0x10000 + ((c1 & 0x03ff) << 10) + (s.charCodeAt(i + 1) & 0x03ff);
          i++;
          b[p++] = (c1 >> 18) | 0xf0;
          b[p++] = ((c1 >> 12) & 0x3f) | 0x80;
          b[p++] = ((c1 >> 6) & 0x3f) | 0x80;
          b[p++] = (c1 & 0x3f) | 0x80;
        } else {
          b[p++] = (c1 >> 12) | 0xe0;
          b[p++] = ((c1 >> 6) & 0x3f) | 0x80;
          b[p++] = (c1 & 0x3f) | 0x80;
        }
      }
      length = p - start - guess;
    } else {
      length = b.write(s, start + guess, b.length - start - guess, 'utf8');
    }
    let p = start;
    if (length < 0x20) {
      b[p++] = 0xa0 | length;
    } else if (length < 0x100) {
      if (guess < 2) b.copyWithin(start + 2, start + 1, start + 1 + length);
      b[p++] = 0xd9;
      b[p++] = length;
    } else if (length < 0x10000) {
      if (guess < 3) b.copyWithin(start + 3, start + guess, start + guess + length);
      b[p++] = 0xda;
      b[p++] = length >> 8;
      b[p++] = length & 0xff;
    } else {
      if (guess < 5) b.copyWithin(start + 5, start + guess, start + guess + length);
      b[p++] = 0xdb;
      this.view.setUint32(p, length);
      p += 4;
    }
    this.pos = p + length;
  }

  /**
   * Writes `v` if it is null, a boolean, a number, a string or a plain array of such (nested
   * up to a few levels) and returns true; otherwise returns false, having written an unknown
   * part of it: the caller must then discard this writer's bytes (reset) and use Packr.
   */
  value(v: unknown, depth = 0): boolean {
    switch (typeof v) {
      case 'number':
        this.number(v);
        return true;
      case 'string':
        this.string(v);
        return true;
      case 'boolean':
        this.boolean(v);
        return true;
      case 'object': {
        if (v === null) {
          this.nil();
          return true;
        }
        if ((v as object).constructor !== Array || depth >= MAX_FAST_DEPTH) return false;
        const a = v as unknown[];
        const n = a.length;
        this.arrayHeader(n);
        for (let i = 0; i < n; i++) {
          // A hole reads as undefined, which Packr writes as an extension: not ours.
          if (!this.value(a[i], depth + 1)) return false;
        }
        return true;
      }
      default:
        return false; // undefined, bigint, symbol, function
    }
  }

  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }
}
