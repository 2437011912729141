import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import { computeKeyGroupRange } from '../keygroups/index.js';
import type { OperatorStateSnapshot, RedistributionMode } from '../state/types.js';
import { chainBytes, chainsOf, isIncremental } from './chains.js';
import { redistributeOperatorState } from './redistribute.js';
import { type FileRead, planRestore } from './restore-plan.js';
import type {
  BlockHandle,
  ChainBlock,
  CheckpointMetadata,
  IncrementalKeyedStateHandle,
  KeyedStateHandle,
  KeyGroupBlock,
  KeyGroupChain,
  OperatorStateEntry,
  OperatorStateHandle,
  SubtaskStateHandle,
} from './types.js';

// --- building metadata the way the writers lay files out ---------------------------------------

/** Blocks back to back from offset 0, ascending by key group (as writeKeyedStateFile does). */
const keyedHandle = (
  file: string,
  range: readonly [number, number],
  sizes: ReadonlyArray<readonly [number, number]>,
): KeyedStateHandle => {
  let offset = 0;
  const blocks: KeyGroupBlock[] = sizes.map(([keyGroup, length]) => {
    const b = { keyGroup, offset, length, crc32: 0 };
    offset += length;
    return b;
  });
  return { file, keyGroupRange: range, blocks, bytes: offset };
};

/**
 * An incremental handle laid out as the writers do: file `f` holds the blocks one checkpoint
 * wrote, back to back from offset 0, ascending by key group. `chains` (ascending by key
 * group): per key group its blocks as [file index, length], base first. `bytes` is what the
 * newest file (the last) holds: what "this" checkpoint wrote.
 */
const incrementalHandle = (
  files: readonly string[],
  range: readonly [number, number],
  chains: ReadonlyArray<readonly [number, ReadonlyArray<readonly [number, number]>]>,
): IncrementalKeyedStateHandle => {
  const ends = files.map(() => 0);
  const out: KeyGroupChain[] = chains.map(([keyGroup, blocks]) => ({
    keyGroup,
    entries: blocks.length,
    blocks: blocks.map(([file, length]): ChainBlock => {
      const b = { file, offset: ends[file]!, length, crc32: 0, records: 1 };
      ends[file]! += length;
      return b;
    }),
  }));
  return {
    type: 'incremental',
    keyGroupRange: range,
    files,
    chains: out,
    bytes: ends.at(-1) ?? 0,
  };
};

type OpStates = ReadonlyArray<{ name: string; mode: RedistributionMode; sizes: number[] }>;

/** Elements back to back from offset 0, state after state (as writeOperatorStateFile does). */
const operatorHandle = (file: string, states: OpStates): OperatorStateHandle => {
  let offset = 0;
  return {
    file,
    states: states.map((s) => ({
      name: s.name,
      mode: s.mode,
      elements: s.sizes.map((length) => {
        const b = { offset, length, crc32: 0 };
        offset += length;
        return b;
      }),
    })),
    bytes: offset,
  };
};

const metadataOf = (...operators: OperatorStateEntry[]): CheckpointMetadata => ({
  formatVersion: 1,
  jobName: 'job',
  jobId: 'id',
  checkpointId: 7,
  savepoint: false,
  timestamp: 0,
  operators,
});

const STATE_NAMES: ReadonlyArray<readonly [string, RedistributionMode]> = [
  ['offsets', 'split'],
  ['assignments', 'union'],
  ['rules', 'broadcast'],
];

/** Random operator: maxP <= 512, old p <= maxP, random non-empty key groups and block sizes. */
const operatorEntry = fc
  .integer({ min: 1, max: 512 })
  .chain((maxP) =>
    fc.record({
      maxP: fc.constant(maxP),
      oldP: fc.integer({ min: 1, max: maxP }),
      newP: fc.integer({ min: 1, max: maxP }),
      // Per key group: no block, or a block of 1..4000 bytes.
      sizes: fc.array(fc.option(fc.integer({ min: 1, max: 4000 }), { freq: 2 }), {
        minLength: maxP,
        maxLength: maxP,
      }),
      // Old subtasks without a keyed handle at all (e.g. never written).
      missingKeyed: fc.array(fc.nat(maxP - 1), { maxLength: 3 }),
      opStates: fc.subarray([...STATE_NAMES]),
      seed: fc.integer(),
    }),
  )
  .map(({ maxP, oldP, newP, sizes, missingKeyed, opStates, seed }) => {
    let x = seed | 1;
    const rnd = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const subtasks: SubtaskStateHandle[] = [];
    for (let i = 0; i < oldP; i++) {
      const r = computeKeyGroupRange(maxP, oldP, i);
      const groups: Array<[number, number]> = [];
      for (let kg = r.start; kg <= r.end; kg++) {
        const size = sizes[kg];
        if (size !== null && size !== undefined) groups.push([kg, size]);
      }
      const keyed = missingKeyed.includes(i)
        ? undefined
        : keyedHandle(`op-${i}.keyed`, [r.start, r.end], groups);
      const states = opStates.map(([name, mode]) => ({
        name,
        mode,
        sizes: Array.from({ length: rnd(5) }, () => 1 + rnd(50)),
      }));
      const operatorState =
        states.length > 0 && rnd(4) > 0 ? operatorHandle(`op-${i}.opstate`, states) : undefined;
      subtasks.push({ index: i, keyed, operatorState });
    }
    // Metadata lists subtasks in ack order, not necessarily by index.
    if (rnd(2) === 0) subtasks.reverse();
    const entry: OperatorStateEntry = {
      uid: 'op',
      name: 'Op',
      parallelism: oldP,
      maxParallelism: maxP,
      subtasks,
    };
    return { entry, newP };
  });

/** The same without operator state (union state of 512 x 512 subtasks is slow to check). */
const keyedOnly = operatorEntry.map(({ entry, newP }) => ({
  entry: { ...entry, subtasks: entry.subtasks.map((s) => ({ ...s, operatorState: undefined })) },
  newP,
}));

// --- helpers ----------------------------------------------------------------------------------

/** The full handle of an old subtask (the random operators here have only full handles). */
const fullOf = (s: SubtaskStateHandle): KeyedStateHandle | undefined => {
  if (s.keyed && isIncremental(s.keyed)) throw new Error('expected a full keyed handle');
  return s.keyed;
};

const keyedFiles = (entry: OperatorStateEntry) =>
  new Map(
    entry.subtasks.flatMap((s) => {
      const h = fullOf(s);
      return h ? [[h.file, h] as const] : [];
    }),
  );

/**
 * The blocks (ascending by offset, back to back) that a read covers; throws unless they tile it
 * exactly. Plain checks, not `expect`, so a few hundred runs stay fast.
 */
const blocksOf = <B extends BlockHandle>(blocks: readonly B[], read: FileRead): B[] => {
  let lo = 0;
  let hi = blocks.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (blocks[mid]!.offset < read.offset) lo = mid + 1;
    else hi = mid;
  }
  const out: B[] = [];
  let at = read.offset;
  for (let i = lo; i < blocks.length && at < read.offset + read.length; i++) {
    if (blocks[i]!.offset !== at) break;
    out.push(blocks[i]!);
    at += blocks[i]!.length;
  }
  if (at !== read.offset + read.length) {
    throw new Error(`read ${JSON.stringify(read)} does not cover whole back-to-back blocks`);
  }
  return out;
};

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

const codeOf = (f: () => unknown): EddyError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EddyError);
    return e as EddyError;
  }
  throw new Error('expected an EddyError');
};

// --- properties -------------------------------------------------------------------------------

describe('planRestore: keyed state', () => {
  it('reads every non-empty key group exactly once, only inside the new range, amplification 1', () => {
    fc.assert(
      fc.property(keyedOnly, ({ entry, newP }) => {
        const plan = planRestore(metadataOf(entry), newP);
        const op = plan.operators[0]!;
        const files = keyedFiles(entry);
        const total = sum([...files.values()].flatMap((h) => h.blocks.map((b) => b.length)));
        const readCount = new Map<number, number>();
        const problems: string[] = [];

        expect(op.subtasks).toHaveLength(newP);
        op.subtasks.forEach((s, i) => {
          const r = computeKeyGroupRange(entry.maxParallelism, newP, i);
          if (s.index !== i || s.keyGroupRange[0] !== r.start || s.keyGroupRange[1] !== r.end) {
            problems.push(`subtask ${i}: ${s.index} ${s.keyGroupRange} vs [${r.start},${r.end}]`);
          }
          let keyGroups = 0;
          for (const read of s.reads) {
            const handle = files.get(read.file);
            if (!handle || read.length <= 0 || read.offset + read.length > handle.bytes) {
              problems.push(`subtask ${i}: read outside its file ${JSON.stringify(read)}`);
              continue;
            }
            const covered = blocksOf(handle.blocks, read);
            if (
              read.keyGroups[0] !== covered[0]!.keyGroup ||
              read.keyGroups[1] !== covered.at(-1)!.keyGroup ||
              read.blocks !== covered.length ||
              read.deltas !== 0
            ) {
              problems.push(`subtask ${i}: key groups of ${JSON.stringify(read)}`);
            }
            for (const b of covered) {
              if (b.keyGroup < r.start || b.keyGroup > r.end) {
                problems.push(`subtask ${i} reads key group ${b.keyGroup}`);
              }
              readCount.set(b.keyGroup, (readCount.get(b.keyGroup) ?? 0) + 1);
              keyGroups++;
            }
          }
          if (
            s.bytes !== sum(s.reads.map((x) => x.length)) ||
            s.keyGroups !== keyGroups ||
            s.blocks !== keyGroups
          ) {
            problems.push(`subtask ${i}: bytes ${s.bytes} / key groups ${s.keyGroups}`);
          }
        });
        expect(problems).toEqual([]);

        const withBlock = [...files.values()].flatMap((h) => h.blocks.map((b) => b.keyGroup));
        expect([...readCount.keys()].sort((a, b) => a - b)).toEqual(
          withBlock.sort((a, b) => a - b),
        );
        expect([...readCount.values()].every((n) => n === 1)).toBe(true);
        expect(op.bytesRead).toBe(total);
        expect(op.bytesNeeded).toBe(total);
        expect(op.keyedStateBytes).toBe(total);
        expect(op.readAmplification).toBe(1);
        expect(plan.readAmplification).toBe(1);
      }),
      { numRuns: 300 },
    );
  });

  it('at unchanged parallelism each subtask reads exactly its own old file, and nothing moves', () => {
    fc.assert(
      fc.property(keyedOnly, ({ entry }) => {
        const op = planRestore(metadataOf(entry), entry.parallelism).operators[0]!;
        const got = op.subtasks.map((s) => {
          const own = fullOf(entry.subtasks.find((o) => o.index === s.index)!);
          return s.reads.map((r) => ({
            file: r.file,
            blocks: own && r.file === own.file ? blocksOf(own.blocks, r) : 'foreign',
          }));
        });
        const want = op.subtasks.map((s) => {
          const own = fullOf(entry.subtasks.find((o) => o.index === s.index)!);
          return own ? own.blocks.map((b) => ({ file: own.file, block: b })) : [];
        });
        expect(
          got.map((reads) =>
            reads.flatMap((r) => [...r.blocks].map((b) => ({ file: r.file, block: b }))),
          ),
        ).toEqual(want);
        expect([op.movedKeyGroups, op.movedBytes]).toEqual([0, 0]);
      }),
      { numRuns: 200 },
    );
  });

  it('moved key groups are those whose owner index changes', () => {
    fc.assert(
      fc.property(keyedOnly, ({ entry, newP }) => {
        const op = planRestore(metadataOf(entry), newP).operators[0]!;
        const oldOf = new Map(
          entry.subtasks.flatMap((o) => {
            const h = fullOf(o);
            return h ? [[h.file, { index: o.index, keyed: h }] as const] : [];
          }),
        );
        let moved = 0;
        let bytes = 0;
        let wrongOrigin = 0;
        for (const s of op.subtasks) {
          for (const read of s.reads) {
            const old = oldOf.get(read.file)!;
            if (read.oldSubtask !== old.index) wrongOrigin++;
            if (old.index === s.index) continue;
            const blocks = blocksOf(old.keyed!.blocks, read);
            moved += blocks.length;
            bytes += sum(blocks.map((b) => b.length));
          }
        }
        expect([op.movedKeyGroups, op.movedBytes, wrongOrigin]).toEqual([moved, bytes, 0]);
      }),
      { numRuns: 100 },
    );
  });
});

/** Operators with operator state, at most 64 old and new subtasks (union state is p x size). */
const withOperatorState = operatorEntry.filter(
  ({ entry, newP }) =>
    entry.parallelism <= 64 && newP <= 64 && entry.subtasks.some((s) => s.operatorState),
);

describe('planRestore: operator state', () => {
  it('deals element blocks exactly as redistributeOperatorState deals the values', () => {
    fc.assert(
      fc.property(withOperatorState, ({ entry, newP }) => {
        const op = planRestore(metadataOf(entry), newP).operators[0]!;
        // The runtime's view: the values read from each old file, in old-subtask order. Each
        // value names its block, so the dealt values say which blocks each subtask must get.
        const olds: OperatorStateSnapshot[] = [];
        const blocksByFile = new Map<string, readonly BlockHandle[]>();
        for (let k = 0; k < entry.parallelism; k++) {
          const h = entry.subtasks.find((s) => s.index === k)?.operatorState;
          if (h)
            blocksByFile.set(
              h.file,
              h.states.flatMap((s) => s.elements),
            );
          olds.push({
            states: (h?.states ?? []).map((s) => ({
              name: s.name,
              mode: s.mode,
              elements: s.elements.map((b) => `${h!.file}@${b.offset}+${b.length}`),
            })),
          });
        }
        const expected = redistributeOperatorState(olds, newP).map((snapshot) =>
          snapshot.states.map((st) => ({
            name: st.name,
            mode: st.mode,
            elements: st.elements.length,
            blocks: st.elements,
          })),
        );
        // What the plan's reads cover, block by block (each read must tile whole blocks).
        const planned = op.subtasks.map((s) =>
          s.operatorState.map((st) => ({
            name: st.name,
            mode: st.mode,
            elements: st.elements,
            blocks: st.from.flatMap((r) =>
              blocksOf(blocksByFile.get(r.file)!, r).map(
                (b) => `${r.file}@${b.offset}+${b.length}`,
              ),
            ),
          })),
        );
        expect(planned).toEqual(expected);
        const bytesOk = op.subtasks.every((s) =>
          s.operatorState.every((st) => st.bytes === sum(st.from.map((r) => r.length))),
        );
        expect(bytesOk).toBe(true);
        // Today's runtime reads every old operator state file whole, in every new subtask.
        const allBytes = sum(
          entry.subtasks.flatMap((o) => (o.operatorState ? [o.operatorState.bytes] : [])),
        );
        expect(op.subtasks.map((s) => sum(s.operatorStateReads.map((r) => r.length)))).toEqual(
          op.subtasks.map(() => allBytes),
        );
        expect(op.operatorStateBytes).toBe(allBytes);
      }),
      { numRuns: 200 },
    );
  });
});

// --- incremental handles ----------------------------------------------------------------------

/**
 * Random incremental operator: each old subtask wrote 1..4 checkpoints (one shared file each);
 * each non-empty key group has a chain of 1..3 blocks in distinct files, oldest first (the
 * base may have been rewritten by a later checkpoint, so a chain can start in any file).
 */
const incrementalEntry = fc
  .integer({ min: 1, max: 256 })
  .chain((maxP) =>
    fc.record({
      maxP: fc.constant(maxP),
      oldP: fc.integer({ min: 1, max: maxP }),
      newP: fc.integer({ min: 1, max: maxP }),
      checkpoints: fc.integer({ min: 1, max: 4 }),
      maxReadBytes: fc.constantFrom(100, 1000, 8 * 1024 * 1024),
      seed: fc.integer(),
    }),
  )
  .map(({ maxP, oldP, newP, checkpoints, maxReadBytes, seed }) => {
    let x = seed | 1;
    const rnd = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const subtasks: SubtaskStateHandle[] = [];
    for (let i = 0; i < oldP; i++) {
      const r = computeKeyGroupRange(maxP, oldP, i);
      const files = Array.from(
        { length: checkpoints },
        (_, c) => `../blocks/op-${i}-${c + 1}-0000000${c}.keyed`,
      );
      const chains: Array<[number, Array<[number, number]>]> = [];
      for (let kg = r.start; kg <= r.end; kg++) {
        if (rnd(3) === 0) continue;
        const picked = new Set<number>();
        const length = 1 + rnd(Math.min(3, checkpoints));
        while (picked.size < length) picked.add(rnd(checkpoints));
        const blocks = [...picked]
          .sort((a, b) => a - b)
          .map((f): [number, number] => [f, 1 + rnd(400)]);
        chains.push([kg, blocks]);
      }
      subtasks.push({ index: i, keyed: incrementalHandle(files, [r.start, r.end], chains) });
    }
    if (rnd(2) === 0) subtasks.reverse();
    const entry: OperatorStateEntry = {
      uid: 'op',
      name: 'Op',
      parallelism: oldP,
      maxParallelism: maxP,
      subtasks,
    };
    return { entry, newP, maxReadBytes };
  });

/** Every block of every chain, by file, ascending by offset, with its key group and position. */
const chainBlocksByFile = (entry: OperatorStateEntry) => {
  const out = new Map<
    string,
    Array<BlockHandle & { keyGroup: number; position: number; owner: number }>
  >();
  for (const s of entry.subtasks) {
    if (!s.keyed || !isIncremental(s.keyed)) throw new Error('expected an incremental handle');
    const h = s.keyed;
    for (const chain of h.chains) {
      chain.blocks.forEach((b, position) => {
        const file = h.files[b.file]!;
        const list = out.get(file) ?? [];
        list.push({ ...b, keyGroup: chain.keyGroup, position, owner: s.index });
        out.set(file, list);
      });
    }
  }
  for (const list of out.values()) list.sort((a, b) => a.offset - b.offset);
  return out;
};

describe('planRestore: incremental handles', () => {
  it('reads exactly the chains (base + deltas) of the owned key groups, per file, coalesced', () => {
    fc.assert(
      fc.property(incrementalEntry, ({ entry, newP, maxReadBytes }) => {
        const op = planRestore(metadataOf(entry), newP, { maxReadBytes }).operators[0]!;
        const byFile = chainBlocksByFile(entry);
        const chains = entry.subtasks.flatMap((s) => chainsOf(s.keyed!).chains);
        const total = sum(chains.map(chainBytes));
        const seen = new Map<string, number>();
        const problems: string[] = [];
        op.subtasks.forEach((s, i) => {
          const r = computeKeyGroupRange(entry.maxParallelism, newP, i);
          let blocks = 0;
          const groups = new Set<number>();
          s.reads.forEach((read, k) => {
            const covered = blocksOf(byFile.get(read.file) ?? [], read);
            const kgs = covered.map((b) => b.keyGroup);
            if (
              read.keyGroups[0] !== Math.min(...kgs) ||
              read.keyGroups[1] !== Math.max(...kgs) ||
              covered.some((b) => b.owner !== read.oldSubtask) ||
              read.blocks !== covered.length ||
              read.deltas !== covered.filter((b) => b.position > 0).length
            ) {
              problems.push(`subtask ${i}: counts of ${JSON.stringify(read)}`);
            }
            for (const b of covered) {
              if (b.keyGroup < r.start || b.keyGroup > r.end) {
                problems.push(`subtask ${i} reads key group ${b.keyGroup}`);
              }
              const id = `${b.keyGroup}/${b.position}`;
              seen.set(id, (seen.get(id) ?? 0) + 1);
              groups.add(b.keyGroup);
              blocks++;
            }
            // Coalesced: a read that ends where the next read of the same file starts must be
            // one that the cap stopped from growing.
            const next = s.reads[k + 1];
            if (next && next.file === read.file) {
              if (next.offset < read.offset + read.length) {
                problems.push(`subtask ${i}: reads of ${read.file} overlap or go backwards`);
              } else if (
                next.offset === read.offset + read.length &&
                read.length + blocksOf(byFile.get(next.file)!, next)[0]!.length <= maxReadBytes
              ) {
                problems.push(`subtask ${i}: touching reads of ${read.file} not coalesced`);
              }
            }
          });
          // Grouped per file: a file's reads are one run in the subtask's reads.
          const order = s.reads.map((x) => x.file).filter((f, k, a) => k === 0 || a[k - 1] !== f);
          if (new Set(order).size !== order.length) problems.push(`subtask ${i}: files interleave`);
          if (
            s.bytes !== sum(s.reads.map((x) => x.length)) ||
            s.blocks !== blocks ||
            s.keyGroups !== groups.size
          ) {
            problems.push(`subtask ${i}: bytes ${s.bytes}, blocks ${s.blocks}, ${s.keyGroups}`);
          }
        });
        expect(problems).toEqual([]);
        // Every block of every chain read once, nothing else.
        const want = chains.flatMap((c) => c.blocks.map((_, p) => `${c.keyGroup}/${p}`));
        expect([...seen.keys()].sort()).toEqual(want.sort());
        expect([...seen.values()].every((n) => n === 1)).toBe(true);
        expect([op.bytesRead, op.bytesNeeded, op.keyedStateBytes]).toEqual([total, total, total]);
        expect(op.readAmplification).toBe(1);
        expect(op.incremental).toBe(true);
        expect(op.keyedBlocks).toBe(want.length);
        expect(op.longestChain).toBe(Math.max(0, ...chains.map((c) => c.blocks.length)));
        // Moved: the key groups whose owner changes, with their whole chains.
        const owner = new Array<number>(entry.maxParallelism);
        for (let j = 0; j < newP; j++) {
          const r = computeKeyGroupRange(entry.maxParallelism, newP, j);
          owner.fill(j, r.start, r.end + 1);
        }
        let moved = 0;
        let movedBytes = 0;
        for (const s of entry.subtasks) {
          for (const c of chainsOf(s.keyed!).chains) {
            if (owner[c.keyGroup] === s.index) continue;
            moved++;
            movedBytes += chainBytes(c);
          }
        }
        expect([op.movedKeyGroups, op.movedBytes]).toEqual([moved, movedBytes]);
      }),
      { numRuns: 200 },
    );
  });

  // maxP 8, old p 2. Subtask 0 (key groups 0-3) wrote checkpoints 1, 2, 3 (files A1 A2 A3),
  // subtask 1 (4-7) checkpoints 2 and 3 (B2 B3). Chains (file:length, base first):
  //   0: A1:10 A2:5 A3:3    1: A1:20    2: A2:7 A3:4 (base rewritten at 2)    3: A1:30 A3:6
  //   4: B2:40    5: B2:50 B3:8    6: none    7: B3:70
  // Offsets: A1 = 0@0 1@10 3@30; A2 = 0@0 2@5; A3 = 0@0 2@3 3@7; B2 = 4@0 5@40; B3 = 5@0 7@8.
  const [A1, A2, A3] = [1, 2, 3].map((c) => `../blocks/count-1-0-${c}-0000000${c}.keyed`);
  const [B2, B3] = [2, 3].map((c) => `../blocks/count-1-1-${c}-0000000${c}.keyed`);
  const entry: OperatorStateEntry = {
    uid: 'count-1',
    name: 'count',
    parallelism: 2,
    maxParallelism: 8,
    subtasks: [
      {
        index: 0,
        keyed: incrementalHandle(
          [A1!, A2!, A3!],
          [0, 3],
          [
            [
              0,
              [
                [0, 10],
                [1, 5],
                [2, 3],
              ],
            ],
            [1, [[0, 20]]],
            [
              2,
              [
                [1, 7],
                [2, 4],
              ],
            ],
            [
              3,
              [
                [0, 30],
                [2, 6],
              ],
            ],
          ],
        ),
      },
      {
        index: 1,
        keyed: incrementalHandle(
          [B2!, B3!],
          [4, 7],
          [
            [4, [[0, 40]]],
            [
              5,
              [
                [0, 50],
                [1, 8],
              ],
            ],
            [7, [[1, 70]]],
          ],
        ),
      },
    ],
  };
  const read = (
    file: string,
    offset: number,
    length: number,
    keyGroups: [number, number],
    blocks: number,
    deltas: number,
  ) => ({
    file,
    offset,
    length,
    keyGroups,
    blocks,
    deltas,
    oldSubtask: file.includes('count-1-0-') ? 0 : 1,
  });

  it('scaling 2 -> 3 reads base + deltas of the owned key groups, file by file', () => {
    const op = planRestore(metadataOf(entry), 3).operators[0]!;
    expect(op.subtasks.map((s) => [s.keyGroupRange, s.reads])).toEqual([
      [
        [0, 2],
        [
          read(A1!, 0, 30, [0, 1], 2, 0), // bases of 0 and 1, touching: one read
          read(A2!, 0, 12, [0, 2], 2, 1), // delta of 0, base of 2
          read(A3!, 0, 7, [0, 2], 2, 2), // deltas of 0 and 2 (not 3: subtask 1 owns it)
        ],
      ],
      [
        [3, 5],
        [
          read(A1!, 30, 30, [3, 3], 1, 0),
          read(A3!, 7, 6, [3, 3], 1, 1),
          read(B2!, 0, 90, [4, 5], 2, 0),
          read(B3!, 0, 8, [5, 5], 1, 1),
        ],
      ],
      [[6, 7], [read(B3!, 8, 70, [7, 7], 1, 0)]],
    ]);
    // Bytes are chain bytes: 0 = 18, 1 = 20, 2 = 11; 3 = 36, 4 = 40, 5 = 58; 7 = 70.
    expect(op.subtasks.map((s) => [s.bytes, s.keyGroups, s.blocks])).toEqual([
      [49, 3, 6],
      [134, 3, 5],
      [70, 1, 1],
    ]);
    expect(op).toMatchObject({
      keyedStateBytes: 253,
      bytesRead: 253,
      bytesNeeded: 253,
      readAmplification: 1,
      incremental: true,
      keyedBlocks: 12,
      longestChain: 3,
      // 3 (36 B) moves from subtask 0 to 1, 7 (70 B) from 1 to 2.
      movedKeyGroups: 2,
      movedBytes: 106,
    });
  });

  it('at unchanged parallelism a subtask reads its own files whole where its chains fill them', () => {
    const op = planRestore(metadataOf(entry), 2).operators[0]!;
    expect(op.subtasks[0]!.reads).toEqual([
      read(A1!, 0, 60, [0, 3], 3, 0),
      read(A2!, 0, 12, [0, 2], 2, 1),
      read(A3!, 0, 13, [0, 3], 3, 3),
    ]);
    expect(op.subtasks[1]!.reads).toEqual([
      read(B2!, 0, 90, [4, 5], 2, 0),
      read(B3!, 0, 78, [5, 7], 2, 1),
    ]);
    expect([op.movedKeyGroups, op.movedBytes]).toEqual([0, 0]);
  });

  it('caps one read at maxReadBytes, per file', () => {
    const op = planRestore(metadataOf(entry), 1, { maxReadBytes: 25 }).operators[0]!;
    expect(op.subtasks[0]!.reads.map((r) => [r.file, r.offset, r.length])).toEqual([
      [A1, 0, 10],
      [A1, 10, 20],
      [A1, 30, 30], // a bigger single block is still one read
      [A2, 0, 12],
      [A3, 0, 13],
      [B2, 0, 40],
      [B2, 40, 50],
      [B3, 0, 8],
      [B3, 8, 70],
    ]);
    expect(op.readAmplification).toBe(1);
  });

  it('refuses a key group in the chains of two old subtasks, naming its base file', () => {
    const dup: OperatorStateEntry = {
      ...entry,
      subtasks: [
        entry.subtasks[0]!,
        { index: 1, keyed: incrementalHandle([B2!], [3, 7], [[3, [[0, 5]]]]) },
      ],
    };
    const e = codeOf(() => planRestore(metadataOf(dup), 2));
    expect(e.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(e.message).toContain(B2);
    expect(e.message).toContain(`key group 3 of operator 'count' (uid count-1) is also in ${A1}`);
  });

  it('mixes full and incremental old subtasks', () => {
    const mixed: OperatorStateEntry = {
      ...entry,
      subtasks: [
        entry.subtasks[0]!,
        {
          index: 1,
          keyed: keyedHandle(
            'count-1-1.keyed',
            [4, 7],
            [
              [4, 40],
              [6, 60],
            ],
          ),
        },
      ],
    };
    const op = planRestore(metadataOf(mixed), 1).operators[0]!;
    expect(op.subtasks[0]!.reads.map((r) => [r.file, r.length, r.blocks, r.deltas])).toEqual([
      [A1, 60, 3, 0],
      [A2, 12, 2, 1],
      [A3, 13, 3, 3],
      ['count-1-1.keyed', 100, 2, 0],
    ]);
    expect([op.incremental, op.keyedBlocks, op.keyedStateBytes]).toEqual([true, 10, 185]);
  });
});

// --- examples and errors ----------------------------------------------------------------------

describe('planRestore: examples', () => {
  // maxP 8, old p 2: subtask 0 owns 0-3, subtask 1 owns 4-7; key group 2 is empty.
  const entry: OperatorStateEntry = {
    uid: 'count-1',
    name: 'count',
    parallelism: 2,
    maxParallelism: 8,
    subtasks: [
      {
        index: 0,
        keyed: keyedHandle(
          'count-1-0.keyed',
          [0, 3],
          [
            [0, 10],
            [1, 20],
            [3, 30],
          ],
        ),
      },
      {
        index: 1,
        keyed: keyedHandle(
          'count-1-1.keyed',
          [4, 7],
          [
            [4, 40],
            [5, 50],
            [6, 60],
            [7, 70],
          ],
        ),
      },
    ],
  };

  it('scaling 2 -> 3 reads the intersecting key groups of each old file, coalesced', () => {
    const op = planRestore(metadataOf(entry), 3).operators[0]!;
    const read = (file: string, offset: number, length: number, keyGroups: number[]) => ({
      file,
      offset,
      length,
      keyGroups,
      blocks: keyGroups[1]! - keyGroups[0]! + 1,
      deltas: 0,
      oldSubtask: Number(file.at(-7)),
    });
    expect(op.subtasks.map((s) => [s.keyGroupRange, s.bytes, s.reads])).toEqual([
      [[0, 2], 30, [read('count-1-0.keyed', 0, 30, [0, 1])]],
      [
        [3, 5],
        120,
        [read('count-1-0.keyed', 30, 30, [3, 3]), read('count-1-1.keyed', 0, 90, [4, 5])],
      ],
      [[6, 7], 130, [read('count-1-1.keyed', 90, 130, [6, 7])]],
    ]);
    expect(op.subtasks.map((s) => [s.keyGroups, s.blocks])).toEqual([
      [2, 2],
      [3, 3],
      [2, 2],
    ]);
    expect(op.keyedStateBytes).toBe(280);
    expect([op.incremental, op.keyedBlocks, op.longestChain]).toEqual([false, 7, 1]);
    // Key group 3 moves from subtask 0 to 1, 6 and 7 from 1 to 2; 0, 1, 4 and 5 stay.
    expect([op.movedKeyGroups, op.movedBytes]).toEqual([3, 30 + 60 + 70]);
  });

  it('caps one read at maxReadBytes (a bigger single block is still one read)', () => {
    const op = planRestore(metadataOf(entry), 1, { maxReadBytes: 50 }).operators[0]!;
    expect(op.subtasks[0]!.reads.map((r) => [r.offset, r.length])).toEqual([
      [0, 30],
      [30, 30],
      [0, 40],
      [40, 50],
      [90, 60],
      [150, 70],
    ]);
    expect(op.readAmplification).toBe(1);
  });

  it('takes a parallelism per uid; others keep their old parallelism', () => {
    const other = { ...entry, uid: 'other', name: 'other' };
    const plan = planRestore(metadataOf(entry, other), new Map([['count-1', 4]]));
    expect(plan.operators.map((o) => [o.uid, o.oldParallelism, o.newParallelism])).toEqual([
      ['count-1', 2, 4],
      ['other', 2, 2],
    ]);
  });

  it('refuses a parallelism above maxParallelism, with advice', () => {
    const big = { ...entry, uid: 'y', name: 'x', maxParallelism: 256 };
    const e = codeOf(() => planRestore(metadataOf(big), 300));
    expect(e.code).toBe('EDDY_INVALID_PARALLELISM');
    expect(e.message).toBe(
      "cannot restore operator 'x' (uid y) at parallelism 300: its maxParallelism is 256 " +
        '(fixed once the job has state); choose a parallelism <= 256',
    );
  });

  it('refuses parallelism < 1 or not an integer', () => {
    for (const p of [0, -1, 1.5, Number.NaN]) {
      const e = codeOf(() => planRestore(metadataOf(entry), p));
      expect(e.code).toBe('EDDY_INVALID_PARALLELISM');
      expect(e.message).toContain('must be an integer >= 1');
    }
  });

  it('refuses an unknown uid and a different maxParallelism, as the runtime does', () => {
    const unknown = codeOf(() => planRestore(metadataOf(entry), new Map([['nope', 2]])));
    expect(unknown.code).toBe('EDDY_CHECKPOINT_INCOMPATIBLE');
    expect(unknown.message).toContain('uid nope');
    expect(unknown.message).toContain('count-1');
    const maxP = codeOf(() => planRestore(metadataOf(entry), 2, { maxParallelismOverride: 16 }));
    expect(maxP.code).toBe('EDDY_CHECKPOINT_INCOMPATIBLE');
    expect(maxP.message).toContain('run with --max-parallelism 8');
    expect(planRestore(metadataOf(entry), 2, { maxParallelismOverride: 8 }).operators).toHaveLength(
      1,
    );
  });

  it('refuses a key group held by two old subtasks (restoring would duplicate it)', () => {
    const twice: OperatorStateEntry = {
      ...entry,
      subtasks: [
        entry.subtasks[0]!,
        { index: 1, keyed: keyedHandle('dup.keyed', [3, 7], [[3, 5]]) },
      ],
    };
    const e = codeOf(() => planRestore(metadataOf(twice), 2));
    expect(e.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(e.message).toContain('key group 3');
  });

  it('computes amplification from the blocks: a block outside its file range shows < 1', () => {
    // Hand-built metadata whose block lies outside the handle's range: the runtime would skip
    // it (it intersects with the handle's range first), and the plan says so.
    const odd: OperatorStateEntry = {
      ...entry,
      subtasks: [
        { index: 0, keyed: keyedHandle('a.keyed', [0, 3], [[5, 10]]) },
        { index: 1, keyed: keyedHandle('b.keyed', [4, 7], [[6, 10]]) },
      ],
    };
    const op = planRestore(metadataOf(odd), 2).operators[0]!;
    expect([op.bytesRead, op.bytesNeeded, op.readAmplification]).toEqual([10, 20, 0.5]);
  });
});
