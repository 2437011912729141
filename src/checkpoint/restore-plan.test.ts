import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import { computeKeyGroupRange } from '../keygroups/index.js';
import type { OperatorStateSnapshot, RedistributionMode } from '../state/types.js';
import { redistributeOperatorState } from './redistribute.js';
import { type FileRead, planRestore } from './restore-plan.js';
import type {
  BlockHandle,
  CheckpointMetadata,
  KeyedStateHandle,
  KeyGroupBlock,
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

const keyedFiles = (entry: OperatorStateEntry) =>
  new Map(entry.subtasks.flatMap((s) => (s.keyed ? [[s.keyed.file, s.keyed] as const] : [])));

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
              read.keyGroups[1] !== covered.at(-1)!.keyGroup
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
          if (s.bytes !== sum(s.reads.map((x) => x.length)) || s.keyGroups !== keyGroups) {
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
          const own = entry.subtasks.find((o) => o.index === s.index)!.keyed;
          return s.reads.map((r) => ({
            file: r.file,
            blocks: own && r.file === own.file ? blocksOf(own.blocks, r) : 'foreign',
          }));
        });
        const want = op.subtasks.map((s) => {
          const own = entry.subtasks.find((o) => o.index === s.index)!.keyed;
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
          entry.subtasks.flatMap((o) => (o.keyed ? [[o.keyed.file, o] as const] : [])),
        );
        let moved = 0;
        let bytes = 0;
        for (const s of op.subtasks) {
          for (const read of s.reads) {
            const old = oldOf.get(read.file)!;
            if (old.index === s.index) continue;
            const blocks = blocksOf(old.keyed!.blocks, read);
            moved += blocks.length;
            bytes += sum(blocks.map((b) => b.length));
          }
        }
        expect([op.movedKeyGroups, op.movedBytes]).toEqual([moved, bytes]);
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
    expect(op.subtasks.map((s) => [s.keyGroupRange, s.bytes, s.reads])).toEqual([
      [[0, 2], 30, [{ file: 'count-1-0.keyed', offset: 0, length: 30, keyGroups: [0, 1] }]],
      [
        [3, 5],
        120,
        [
          { file: 'count-1-0.keyed', offset: 30, length: 30, keyGroups: [3, 3] },
          { file: 'count-1-1.keyed', offset: 0, length: 90, keyGroups: [4, 5] },
        ],
      ],
      [[6, 7], 130, [{ file: 'count-1-1.keyed', offset: 90, length: 130, keyGroups: [6, 7] }]],
    ]);
    expect(op.keyedStateBytes).toBe(280);
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
