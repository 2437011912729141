/**
 * The store's in-memory table: writes not yet in a run file. Keys and values are latin1
 * strings (one char per byte, so string order is byte order): a V8 one-byte string costs far
 * less than a Buffer per entry. A value of `null` is a deletion (a tombstone: it hides older
 * versions in runs until a compaction that reaches the oldest run drops it).
 *
 * Sorted order is kept lazily: new keys collect unsorted and are merged into the sorted list
 * at the next ordered read, so a write batch costs O(b log b + n) once, not per key.
 */
export type MemValue = string | null;

export class Memtable {
  private readonly map = new Map<string, MemValue>();
  private sorted: string[] = [];
  private added: string[] = [];
  /** Set once a snapshot holds it: later writes go to a new table. */
  frozen = false;

  get size(): number {
    return this.map.size;
  }

  get(key: string): MemValue | undefined {
    return this.map.get(key);
  }

  set(key: string, value: MemValue): void {
    if (this.frozen) throw new Error('internal: write to a frozen memtable');
    if (!this.map.has(key)) this.added.push(key);
    this.map.set(key, value);
  }

  /** The keys in byte order (shared: callers must not change it). */
  keys(): readonly string[] {
    if (this.added.length > 0) {
      this.added.sort(compareStrings);
      this.sorted = mergeSorted(this.sorted, this.added);
      this.added = [];
    }
    return this.sorted;
  }
}

export const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Index of the first element ≥ `key` in sorted `xs`. */
export const lowerBound = (xs: readonly string[], key: string): number => {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
};

const mergeSorted = (a: readonly string[], b: readonly string[]): string[] => {
  if (a.length === 0) return b.slice();
  const out = new Array<string>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = a[i]! <= b[j]! ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
};
