/**
 * A blocked Bloom filter over latin1 key strings (each byte one char, so string order is byte
 * order): every key sets 6 bits in one 512-bit block, so a lookup touches one cache line
 * whatever the filter's size. A run keeps one in memory and never writes it out (runs do not
 * outlive their store). At 10 bits per key the false-positive rate is about 1.2%.
 */

const BLOCK_WORDS = 16; // 512 bits
const PROBES = 6;

/** FNV-1a over the string's chars (bytes), 32 bits. */
export const hashKey = (key: string): number => {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
};

/** {@link hashKey} of the latin1 string of `bytes`, without making the string. */
export const hashBytes = (bytes: Uint8Array): number => hashRange(bytes, 0, bytes.length);

/** {@link hashBytes} of `bytes[start, end)`. */
export const hashRange = (bytes: Uint8Array, start: number, end: number): number => {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
};

/** murmur3's finalizer: the bits within a block, independent of the block's index. */
const mix = (h: number): number => {
  let x = (h ^ 0x9e3779b9) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
};

export class BloomFilter {
  private readonly words: Uint32Array;
  private readonly blocks: number;

  constructor(expectedKeys: number, bitsPerKey = 10) {
    this.blocks = Math.max(1, Math.ceil((Math.max(1, expectedKeys) * bitsPerKey) / 512));
    this.words = new Uint32Array(this.blocks * BLOCK_WORDS);
  }

  /** Bytes held (for memory accounting). */
  get bytes(): number {
    return this.words.byteLength;
  }

  add(hash: number): void {
    const base = (hash % this.blocks) * BLOCK_WORDS;
    let bits = mix(hash);
    for (let i = 0; i < PROBES; i++) {
      const bit = bits & 511;
      this.words[base + (bit >>> 5)]! |= 1 << (bit & 31);
      bits = (bits >>> 5) | (bits << 27);
    }
  }

  /** False: the key was never added. True: it may have been. */
  mayHave(hash: number): boolean {
    const base = (hash % this.blocks) * BLOCK_WORDS;
    let bits = mix(hash);
    for (let i = 0; i < PROBES; i++) {
      const bit = bits & 511;
      if ((this.words[base + (bit >>> 5)]! & (1 << (bit & 31))) === 0) return false;
      bits = (bits >>> 5) | (bits << 27);
    }
    return true;
  }
}
