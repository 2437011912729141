/**
 * Length-prefixed framing of a byte stream (TCP): every frame travels as a u32 big-endian
 * length and its bytes. The length 0xFFFFFFFF is reserved for GOODBYE, the marker a link
 * sends before it ends its side on purpose; a stream that ends without it lost its peer.
 *
 * Hazard: decoded frames are views into the socket's chunks (no copy when a frame lies within
 * one chunk). That is safe because Node gives every socket read its own buffer; a frame keeps
 * its chunk alive for as long as it is referenced.
 */
import { EddyError } from '../../core/errors.js';

/** Bytes of the length prefix. */
export const PREFIX_BYTES = 4;
/** Default largest frame a decoder accepts: a length above it is corruption or a foreign peer. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** The reserved length that marks a deliberate end of the stream. */
const GOODBYE_LENGTH = 0xffffffff;
/** Frames at least this large are written as their own chunk (writev), not copied. */
const COPY_LIMIT = 64 * 1024;

/** The 4-byte GOODBYE marker. */
export const goodbyeMarker = (): Buffer => {
  const b = Buffer.allocUnsafe(PREFIX_BYTES);
  b.writeUInt32BE(GOODBYE_LENGTH, 0);
  return b;
};

/**
 * Encodes frames for one socket write: small frames and all prefixes are copied into shared
 * chunks; large frames are passed through as their own chunks, so big payloads are never
 * copied. Returns the chunks in order.
 */
export const encodeFrames = (frames: readonly Uint8Array[]): Buffer[] => {
  const chunks: Buffer[] = [];
  let i = 0;
  while (i < frames.length) {
    // One run of small frames, plus the prefix of the large frame that ends it (if any).
    let size = 0;
    let j = i;
    while (j < frames.length && frames[j]!.byteLength < COPY_LIMIT) {
      size += PREFIX_BYTES + frames[j]!.byteLength;
      j++;
    }
    const big = j < frames.length ? frames[j]! : undefined;
    const out = Buffer.allocUnsafe(size + (big ? PREFIX_BYTES : 0));
    let at = 0;
    for (let k = i; k < j; k++) {
      const f = frames[k]!;
      out.writeUInt32BE(f.byteLength, at);
      out.set(f, at + PREFIX_BYTES);
      at += PREFIX_BYTES + f.byteLength;
    }
    if (big) {
      out.writeUInt32BE(big.byteLength, at);
      chunks.push(out, Buffer.from(big.buffer, big.byteOffset, big.byteLength));
      i = j + 1;
    } else {
      chunks.push(out);
      i = j;
    }
  }
  return chunks;
};

/** What a {@link FrameDecoder} reports to. */
export interface FrameSink {
  frame(frame: Uint8Array): void;
  /** The peer sent GOODBYE: it ends the stream on purpose. */
  goodbye(): void;
}

/**
 * Splits a byte stream into frames: frames split across chunks are assembled (one copy),
 * frames within a chunk are passed as views (no copy). `peer` names the other end in errors.
 */
export class FrameDecoder {
  /** The length prefix read so far when it is split across chunks. */
  private readonly prefix = Buffer.alloc(PREFIX_BYTES);
  private prefixHave = 0;
  /** The frame being assembled from several chunks, and how many bytes it has. */
  private partial: Uint8Array | undefined;
  private partialHave = 0;
  private done = false;

  constructor(
    private readonly sink: FrameSink,
    /** Names the other end in errors. */
    public peer: string,
    private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
  ) {}

  /** Feeds one chunk; throws EDDY_WIRE_FORMAT on a length over the maximum. */
  push(chunk: Uint8Array): void {
    let at = 0;
    const n = chunk.byteLength;
    while (at < n && !this.done) {
      if (this.partial !== undefined) {
        at = this.fillPartial(chunk, at);
        continue;
      }
      let length: number;
      if (this.prefixHave === 0 && n - at >= PREFIX_BYTES) {
        length = readU32(chunk, at);
        at += PREFIX_BYTES;
      } else {
        const take = Math.min(PREFIX_BYTES - this.prefixHave, n - at);
        this.prefix.set(chunk.subarray(at, at + take), this.prefixHave);
        this.prefixHave += take;
        at += take;
        if (this.prefixHave < PREFIX_BYTES) return;
        this.prefixHave = 0;
        length = this.prefix.readUInt32BE(0);
      }
      if (length === GOODBYE_LENGTH) {
        this.done = true;
        this.sink.goodbye();
        return;
      }
      this.checkLength(length);
      if (n - at >= length) {
        this.sink.frame(new Uint8Array(chunk.buffer, chunk.byteOffset + at, length));
        at += length;
      } else {
        this.partial = new Uint8Array(length);
        this.partialHave = 0;
      }
    }
  }

  /** Bytes of an unfinished frame or prefix: non-zero when a stream ends mid-frame. */
  get buffered(): number {
    return this.prefixHave + this.partialHave;
  }

  private fillPartial(chunk: Uint8Array, at: number): number {
    const p = this.partial!;
    const take = Math.min(p.byteLength - this.partialHave, chunk.byteLength - at);
    p.set(chunk.subarray(at, at + take), this.partialHave);
    this.partialHave += take;
    if (this.partialHave === p.byteLength) {
      this.partial = undefined;
      this.partialHave = 0;
      this.sink.frame(p);
    }
    return at + take;
  }

  private checkLength(length: number): void {
    if (length <= this.maxFrameBytes) return;
    this.done = true;
    throw new EddyError(
      'EDDY_WIRE_FORMAT',
      `wire format: ${this.peer} announced a frame of ${length} bytes, over the maximum of ` +
        `${this.maxFrameBytes}: the stream is corrupt or the peer is not an eddy worker of ` +
        'this version; check the address and that all processes run the same eddy',
      { domain: 'internal' },
    );
  }
}

const readU32 = (b: Uint8Array, at: number): number =>
  ((b[at]! << 24) >>> 0) + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
