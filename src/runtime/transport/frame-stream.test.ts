import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EddyError } from '../../core/errors.js';
import { encodeFrames, FrameDecoder, goodbyeMarker } from './frame-stream.js';

/** Decodes `stream` cut at `cuts`; returns the frames (copied) and whether GOODBYE came. */
const decodeInPieces = (stream: Uint8Array, cuts: number[], max?: number) => {
  const frames: Uint8Array[] = [];
  let goodbye = false;
  const d = new FrameDecoder(
    { frame: (f) => frames.push(f), goodbye: () => (goodbye = true) },
    'test peer',
    max,
  );
  let at = 0;
  for (const c of [...cuts.sort((a, b) => a - b), stream.length]) {
    // Each chunk gets its own buffer, as socket reads do.
    d.push(Uint8Array.from(stream.subarray(at, c)));
    at = c;
  }
  return { frames, goodbye, buffered: d.buffered };
};

const concat = (chunks: readonly Uint8Array[]) => Buffer.concat(chunks);

describe('length-prefixed frame stream', () => {
  it('gives back the same frames in order, whatever the chunk boundaries', () => {
    const frame = fc.oneof(
      { weight: 8, arbitrary: fc.uint8Array({ maxLength: 300 }) },
      // Large frames take the no-copy path of the encoder (their own chunk).
      { weight: 1, arbitrary: fc.integer({ min: 64 * 1024, max: 70 * 1024 }).map(randomBytes) },
    );
    fc.assert(
      fc.property(
        fc.array(frame, { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (frames, rawCuts) => {
          const stream = concat([...encodeFrames(frames), goodbyeMarker()]);
          const cuts = rawCuts.map((c) => c % (stream.length + 1));
          const out = decodeInPieces(stream, cuts);
          // Compared by bytes: deep equality of large arrays is too slow for a property test.
          expect(out.frames.length).toBe(frames.length);
          const differ = frames.findIndex((f, i) => Buffer.compare(f, out.frames[i]!) !== 0);
          expect(differ).toBe(-1);
          expect(out.goodbye).toBe(true);
          expect(out.buffered).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('passes a frame that lies within one chunk as a view, without copying', () => {
    const frames = [Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5)];
    const chunk = concat(encodeFrames(frames));
    const seen: Uint8Array[] = [];
    new FrameDecoder({ frame: (f) => seen.push(f), goodbye: () => {} }, 'p').push(chunk);
    expect(seen.map((f) => f.buffer === chunk.buffer)).toEqual([true, true]);
    expect(seen.map((f) => [...f])).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
  });

  it('writes a large frame as its own chunk (no copy) and small ones coalesced', () => {
    const big = randomBytes(100_000);
    const chunks = encodeFrames([Uint8Array.of(1), big, Uint8Array.of(2)]);
    expect(chunks).toHaveLength(3);
    expect(chunks[1]!.buffer).toBe(big.buffer);
  });

  it('refuses a length over the maximum with a wire-format error naming the peer', () => {
    const prefix = Buffer.alloc(4);
    prefix.writeUInt32BE(2000, 0);
    const d = new FrameDecoder({ frame: () => {}, goodbye: () => {} }, 'worker 3 at h:1', 1024);
    let error: unknown;
    try {
      d.push(prefix);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EddyError);
    expect(error).toMatchObject({ code: 'EDDY_WIRE_FORMAT', retriable: false });
    expect((error as Error).message).toMatch(/worker 3 at h:1 .*2000 bytes.*maximum of 1024/);
  });
});

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 97) b[i] = (i * 31 + n) & 0xff;
  return b;
}
