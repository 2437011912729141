/**
 * Byte keys of the on-disk backend's store (see index.ts for the layout):
 *
 *   [key group: u16 BE][state id: u16 BE][key: tagged, prefix-free]([user key: tagged])
 *
 * The key group comes first, so one key group is one contiguous range of the store and a
 * key-group range is one contiguous range too. Keys are prefix-free: every key ends where its
 * tag and length say, so the user keys of one (state, key) entry of map state are one
 * contiguous range as well, and a key can be decoded from the front of a longer byte string.
 *
 * Tags (one byte), then:
 *   0x01 false, 0x02 true              no payload
 *   0x03 number                        8 bytes, IEEE-754 BE made order-preserving (negatives
 *                                      inverted, positives with the sign bit set); -0 → 0,
 *                                      every NaN → one NaN: Map semantics (SameValueZero)
 *   0x04 bigint                        varint length, decimal ASCII
 *   0x05 string (well-formed UTF-16)   varint byte length, UTF-8
 *   0x06 string with lone surrogates   varint code-unit count, UTF-16LE (UTF-8 would lose them)
 *   0x07 other user key (map state)    varint length, msgpack (compared by value, not identity)
 *   0x08 undefined, 0x09 null          no payload (map state user keys only)
 *
 * Injective and reversible by construction (tested with fast-check). Numbers compare in numeric
 * order, strings by length first: byte order is the iteration order of map state's entries.
 */
import { EddyError } from '../../core/errors.js';
import type { NormalizedKey } from '../types.js';
import { packValue, unpackValue } from './value-codec.js';

const T_FALSE = 0x01;
const T_TRUE = 0x02;
const T_NUMBER = 0x03;
const T_BIGINT = 0x04;
const T_UTF8 = 0x05;
const T_UTF16 = 0x06;
const T_PACKED = 0x07;
const T_UNDEFINED = 0x08;
const T_NULL = 0x09;

/** Bytes of the key-group and state-id header. */
export const HEADER_BYTES = 4;
/**
 * The disk store's key size limit (its run files give a key 16 bits of length; a key a
 * fraction of that keeps a data block to a few keys at worst).
 */
export const MAX_KEY_BYTES = 16_384;

/** Largest state id (u16): a backend holds at most this many named states. */
export const MAX_STATE_ID = 0xffff;

type WellFormed = { isWellFormed(): boolean };
const isWellFormed = (s: string): boolean => (s as unknown as WellFormed).isWellFormed();

const f64 = new DataView(new ArrayBuffer(8));

/**
 * Writes keys into one reusable buffer (grown as needed): {@link bytes} is a view valid until
 * the next write; copy it (`Buffer.from`) to keep it. The store copies keys it is given.
 */
export class KeyWriter {
  buf: Buffer = Buffer.allocUnsafe(256);
  pos = 0;

  /** Starts a key: [key group][state id]. */
  header(keyGroup: number, stateId: number): this {
    this.pos = 0;
    this.ensure(HEADER_BYTES);
    this.buf.writeUInt16BE(keyGroup, 0);
    this.buf.writeUInt16BE(stateId, 2);
    this.pos = HEADER_BYTES;
    return this;
  }

  /** Starts a key of only [key group] (a key group's range bounds). */
  keyGroupOnly(keyGroup: number): this {
    this.pos = 0;
    this.ensure(2);
    this.buf.writeUInt16BE(keyGroup, 0);
    this.pos = 2;
    return this;
  }

  /** Appends a normalized key (tagged, prefix-free). */
  key(key: NormalizedKey): this {
    switch (typeof key) {
      case 'boolean':
        this.byte(key ? T_TRUE : T_FALSE);
        return this;
      case 'number':
        this.number(key);
        return this;
      case 'bigint':
        this.ascii(T_BIGINT, key.toString());
        return this;
      case 'string':
        this.string(key);
        return this;
    }
    throw new EddyError('EDDY_STATE', `not a normalized key: ${typeof key}`, {
      domain: 'internal',
    });
  }

  /** Appends a map state's user key: primitives as {@link key}, anything else as msgpack. */
  userKey(key: unknown): this {
    switch (typeof key) {
      case 'boolean':
      case 'number':
      case 'bigint':
      case 'string':
        return this.key(key);
      case 'undefined':
        this.byte(T_UNDEFINED);
        return this;
      case 'object':
        if (key === null) {
          this.byte(T_NULL);
          return this;
        }
        return this.raw(T_PACKED, packValue(key));
    }
    throw new EddyError(
      'EDDY_STATE',
      `a ${typeof key} cannot be a map state key in the disk state backend (keys are stored as bytes)`,
      { domain: 'user' },
    );
  }

  /** Appends bytes as they are. */
  bytes(bytes: Uint8Array): this {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  /**
   * The key written so far: a view into the reused buffer.
   * @throws EddyError `EDDY_STATE` (user) if it is longer than {@link MAX_KEY_BYTES}.
   */
  view(): Buffer {
    if (this.pos > MAX_KEY_BYTES) throw tooLong(this.pos);
    return this.buf.subarray(0, this.pos);
  }

  /** The key written so far, copied (checked as {@link view}). */
  copy(): Buffer {
    return Buffer.from(this.view());
  }

  /** The key written so far as a latin1 string, one char per byte (checked as {@link view}). */
  latin1(): string {
    if (this.pos > MAX_KEY_BYTES) throw tooLong(this.pos);
    return this.buf.toString('latin1', 0, this.pos);
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  private number(n: number): void {
    this.ensure(9);
    const buf = this.buf;
    buf[this.pos++] = T_NUMBER;
    f64.setFloat64(0, n === 0 ? 0 : Number.isNaN(n) ? Number.NaN : n);
    const negative = (f64.getUint8(0) & 0x80) !== 0;
    for (let i = 0; i < 8; i++) {
      const b = f64.getUint8(i);
      buf[this.pos++] = negative ? ~b & 0xff : i === 0 ? b | 0x80 : b;
    }
  }

  private ascii(tag: number, s: string): void {
    this.ensure(1 + 5 + s.length);
    this.buf[this.pos++] = tag;
    this.varint(s.length);
    this.pos += this.buf.write(s, this.pos, 'latin1');
  }

  private string(s: string): void {
    if (isWellFormed(s)) {
      const n = Buffer.byteLength(s, 'utf8');
      this.ensure(1 + 5 + n);
      this.buf[this.pos++] = T_UTF8;
      this.varint(n);
      this.pos += this.buf.write(s, this.pos, n, 'utf8');
      return;
    }
    this.ensure(1 + 5 + 2 * s.length);
    this.buf[this.pos++] = T_UTF16;
    this.varint(s.length);
    this.pos += this.buf.write(s, this.pos, 2 * s.length, 'utf16le');
  }

  private raw(tag: number, bytes: Uint8Array): this {
    this.ensure(1 + 5 + bytes.length);
    this.buf[this.pos++] = tag;
    this.varint(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  private varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.buf[this.pos++] = n;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

const tooLong = (bytes: number) =>
  new EddyError(
    'EDDY_STATE',
    `a state key of ${bytes} bytes is too long for the disk state backend: its keys hold at ` +
      `most ${MAX_KEY_BYTES} bytes (the key, and for map state the map key, encoded); use ` +
      'shorter keys or the heap state backend',
    { domain: 'user' },
  );

/** A key group of a store key. */
export const keyGroupOf = (key: Uint8Array): number => (key[0]! << 8) | key[1]!;

/** The state id of a store key. */
export const stateIdOf = (key: Uint8Array): number => (key[2]! << 8) | key[3]!;

/** {@link stateIdOf} of the key at `at` in `bytes`. */
export const stateIdAt = (bytes: Uint8Array, at: number): number =>
  (bytes[at + 2]! << 8) | bytes[at + 3]!;

/** Where decoding stopped: set by {@link readKey} and {@link readUserKey}. */
export const cursor = { pos: 0 };

const corrupt = (what: string) =>
  new EddyError('EDDY_STATE', `corrupt key in the disk state store: ${what}`, {
    domain: 'internal',
  });

const readVarint = (b: Uint8Array, at: number): number => {
  let n = 0;
  let shift = 0;
  for (;;) {
    const byte = b[at++];
    if (byte === undefined) throw corrupt('truncated length');
    n += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) break;
    shift += 7;
  }
  cursor.pos = at;
  return n;
};

const asBuffer = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);

/** Decodes the normalized key at `at`; {@link cursor}.pos is the offset after it. */
export const readKey = (bytes: Uint8Array, at: number): NormalizedKey => {
  const v = readUserKey(bytes, at);
  if (v === undefined || v === null || typeof v === 'object') throw corrupt('not a normalized key');
  return v as NormalizedKey;
};

/** Decodes the user key (or normalized key) at `at`; {@link cursor}.pos is the offset after it. */
export const readUserKey = (bytes: Uint8Array, at: number): unknown => {
  const b = asBuffer(bytes);
  const tag = b[at];
  switch (tag) {
    case T_FALSE:
    case T_TRUE:
      cursor.pos = at + 1;
      return tag === T_TRUE;
    case T_UNDEFINED:
      cursor.pos = at + 1;
      return undefined;
    case T_NULL:
      cursor.pos = at + 1;
      return null;
    case T_NUMBER: {
      if (at + 9 > b.length) throw corrupt('truncated number');
      const negative = (b[at + 1]! & 0x80) === 0;
      for (let i = 0; i < 8; i++) {
        const x = b[at + 1 + i]!;
        f64.setUint8(i, negative ? ~x & 0xff : i === 0 ? x & 0x7f : x);
      }
      cursor.pos = at + 9;
      return f64.getFloat64(0);
    }
    case T_BIGINT:
    case T_UTF8:
    case T_UTF16:
    case T_PACKED: {
      const n = readVarint(b, at + 1);
      const start = cursor.pos;
      const bytesLen = tag === T_UTF16 ? 2 * n : n;
      const end = start + bytesLen;
      if (end > b.length) throw corrupt('truncated value');
      cursor.pos = end;
      if (tag === T_BIGINT) return BigInt(b.toString('latin1', start, end));
      if (tag === T_UTF8) return b.toString('utf8', start, end);
      if (tag === T_UTF16) return b.toString('utf16le', start, end);
      const v = unpackValue(b.subarray(start, end));
      cursor.pos = end; // unpack does not move it, but be explicit
      return v;
    }
  }
  throw corrupt(`unknown tag ${String(tag)}`);
};

/** Smallest byte string greater than every string starting with `prefix` (undefined: none). */
export const prefixEnd = (prefix: Uint8Array): Buffer | undefined => {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] !== 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
};
