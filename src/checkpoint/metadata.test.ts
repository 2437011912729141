import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { flipByte } from './checkpoint.testkit.js';
import { decodeMetadata, encodeMetadata } from './metadata.js';
import {
  CHECKPOINT_FORMAT_VERSION,
  type CheckpointMetadata,
  type KeyedStateHandle,
  type OperatorStateEntry,
  type OperatorStateHandle,
} from './types.js';

const u32 = fc.nat(0xffffffff);

/** Blocks of the given lengths laid back to back, from offset 0. */
const backToBack = <T extends object>(items: Array<T & { length: number }>) => {
  let offset = 0;
  return items.map((it) => {
    const b = { ...it, offset };
    offset += it.length;
    return b;
  });
};

const keyedHandle = (maxP: number): fc.Arbitrary<KeyedStateHandle> =>
  fc.tuple(fc.nat(maxP - 1), fc.nat(maxP - 1)).chain(([a, b]) => {
    const [start, end] = [Math.min(a, b), Math.max(a, b)];
    const groups = Array.from({ length: end - start + 1 }, (_, i) => start + i);
    return fc
      .subarray(groups)
      .chain((kgs) =>
        fc.tuple(
          ...kgs.map((keyGroup) =>
            fc.record({
              keyGroup: fc.constant(keyGroup),
              length: fc.integer({ min: 1, max: 9999 }),
              crc32: u32,
            }),
          ),
        ),
      )
      .map((raw) => {
        const blocks = backToBack(raw);
        const bytes = blocks.reduce((s, b) => s + b.length, 0);
        return { file: `op-${start}.keyed`, keyGroupRange: [start, end] as const, blocks, bytes };
      });
  });

const operatorHandle: fc.Arbitrary<OperatorStateHandle> = fc
  .uniqueArray(fc.string({ maxLength: 5 }), { maxLength: 3 })
  .chain((names) =>
    fc.tuple(
      ...names.map((name) =>
        fc.record({
          name: fc.constant(name),
          mode: fc.constantFrom('split' as const, 'union' as const, 'broadcast' as const),
          elements: fc.array(fc.record({ length: fc.integer({ min: 1, max: 99 }), crc32: u32 }), {
            maxLength: 4,
          }),
        }),
      ),
    ),
  )
  .map((states) => {
    const all = backToBack(states.flatMap((s) => s.elements));
    let i = 0;
    const placed = states.map((s) => ({ ...s, elements: s.elements.map(() => all[i++]!) }));
    return { file: 'x/op.opstate', states: placed, bytes: all.reduce((s, b) => s + b.length, 0) };
  });

const operatorEntry = (uid: string): fc.Arbitrary<OperatorStateEntry> =>
  fc
    .integer({ min: 1, max: 6 })
    .chain((parallelism) =>
      fc.record({
        uid: fc.constant(uid),
        name: fc.string({ maxLength: 10 }),
        parallelism: fc.constant(parallelism),
        maxParallelism: fc.integer({ min: parallelism, max: 64 }),
      }),
    )
    .chain((op) =>
      fc
        .subarray(Array.from({ length: op.parallelism }, (_, i) => i))
        .chain((indices) =>
          fc.tuple(
            ...indices.map((index) =>
              fc.record({
                index: fc.constant(index),
                keyed: fc.option(keyedHandle(op.maxParallelism), { nil: undefined }),
                operatorState: fc.option(operatorHandle, { nil: undefined }),
              }),
            ),
          ),
        )
        .map((subtasks) => ({ ...op, subtasks })),
    );

const metadata: fc.Arbitrary<CheckpointMetadata> = fc.record({
  formatVersion: fc.constant(CHECKPOINT_FORMAT_VERSION),
  jobName: fc.string(),
  jobId: fc.uuid(),
  checkpointId: fc.nat(),
  savepoint: fc.boolean(),
  timestamp: fc.integer({ min: 0, max: 2 ** 45 }),
  operators: fc
    .uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { maxLength: 4 })
    .chain((uids) => fc.tuple(...uids.map(operatorEntry))),
});

/** JSON drops undefined fields; compare what the metadata says, not how it was built. */
const plain = (m: CheckpointMetadata) => JSON.parse(JSON.stringify(m));

const errorOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('expected an error');
};

const PATH = '/ckpt/chk-7/_metadata';

describe('checkpoint metadata', () => {
  it('round-trips through the envelope', () => {
    fc.assert(
      fc.property(metadata, (m) => {
        expect(decodeMetadata(encodeMetadata(m), PATH)).toEqual(plain(m));
      }),
    );
  });

  it('detects any flipped byte as corruption naming the file', () => {
    fc.assert(
      fc.property(metadata, fc.nat(), (m, at) => {
        const bytes = encodeMetadata(m);
        const err = errorOf(() => decodeMetadata(flipByte(bytes, at % bytes.length), PATH));
        expect(err.code).toBe('EDDY_CHECKPOINT_CORRUPT');
        expect(err.message).toContain(PATH);
      }),
    );
  });

  it('detects truncation and garbage', () => {
    const bytes = encodeMetadata(fc.sample(metadata, { numRuns: 1, seed: 1 })[0]!);
    for (const cut of [0, 5, 19, 20, bytes.length - 1]) {
      expect(errorOf(() => decodeMetadata(bytes.subarray(0, cut), PATH)).message).toMatch(
        /truncated/,
      );
    }
    expect(errorOf(() => decodeMetadata(Buffer.from('{"jobName":"x"}'), PATH)).message).toMatch(
      /truncated|bad magic/,
    );
    expect(errorOf(() => decodeMetadata(Buffer.alloc(64), PATH)).message).toMatch(/bad magic/);
  });

  it('refuses another format version with advice', () => {
    const m = { ...fc.sample(metadata, { numRuns: 1, seed: 2 })[0]!, formatVersion: 2 };
    const err = errorOf(() => decodeMetadata(encodeMetadata(m), PATH));
    expect(err.code).toBe('EDDY_CHECKPOINT_INCOMPATIBLE');
    expect(err.message).toBe(
      `checkpoint ${PATH} has format version 2; this eddy reads version 1: restore it with the eddy version that wrote it`,
    );
    const sp = '/sp/savepoint-job-3-20260101T000000';
    expect(
      errorOf(() => decodeMetadata(encodeMetadata({ ...m, formatVersion: 9 }), sp)).message,
    ).toBe(
      `savepoint ${sp} has format version 9; this eddy reads version 1: restore it with the eddy version that wrote it`,
    );
  });

  it('rejects malformed fields, naming the field', () => {
    const base = fc.sample(metadata, { numRuns: 1, seed: 3 })[0]!;
    const op = {
      uid: 'a',
      name: 'a',
      parallelism: 2,
      maxParallelism: 8,
      subtasks: [
        {
          index: 0,
          keyed: {
            file: 'a-0.keyed',
            keyGroupRange: [0, 3],
            blocks: [{ keyGroup: 0, offset: 0, length: 5, crc32: 1 }],
            bytes: 5,
          },
        },
      ],
    };
    const cases: Array<[unknown, RegExp]> = [
      [{ ...base, operators: 'x' }, /operators must be an array/],
      [{ ...base, checkpointId: -1 }, /checkpointId must be an integer/],
      [{ ...base, operators: [{ ...op, parallelism: 0 }] }, /operators\[0\]\.parallelism/],
      [{ ...base, operators: [{ ...op, maxParallelism: 1 }] }, /operators\[0\]\.maxParallelism/],
      [{ ...base, operators: [op, op] }, /operators\[1\]\.uid 'a' appears twice/],
      [
        { ...base, operators: [{ ...op, subtasks: [{ index: 2 }] }] },
        /operators\[0\]\.subtasks\[0\]\.index/,
      ],
      [
        {
          ...base,
          operators: [
            {
              ...op,
              subtasks: [
                {
                  ...op.subtasks[0],
                  keyed: { ...op.subtasks[0]!.keyed, file: '../../etc/passwd' },
                },
              ],
            },
          ],
        },
        /not a relative path inside the checkpoint/,
      ],
      [
        {
          ...base,
          operators: [
            {
              ...op,
              subtasks: [{ ...op.subtasks[0], keyed: { ...op.subtasks[0]!.keyed, bytes: 4 } }],
            },
          ],
        },
        /blocks\[0\]\.length/,
      ],
      [
        {
          ...base,
          operators: [
            {
              ...op,
              subtasks: [
                { ...op.subtasks[0], keyed: { ...op.subtasks[0]!.keyed, keyGroupRange: [0, 8] } },
              ],
            },
          ],
        },
        /keyGroupRange\[1\]/,
      ],
    ];
    for (const [m, re] of cases) {
      const err = errorOf(() => decodeMetadata(encodeMetadata(m as CheckpointMetadata), PATH));
      expect(err.code).toBe('EDDY_CHECKPOINT_CORRUPT');
      expect(err.message).toMatch(re);
      expect(err.message).toContain(PATH);
    }
  });
});
