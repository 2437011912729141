import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { flipByte } from './checkpoint.testkit.js';
import { decodeMetadata, encodeMetadata } from './metadata.js';
import {
  CHECKPOINT_FORMAT_VERSION,
  type CheckpointMetadata,
  type IncrementalKeyedStateHandle,
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
    const m = { ...fc.sample(metadata, { numRuns: 1, seed: 2 })[0]!, formatVersion: 3 };
    const err = errorOf(() => decodeMetadata(encodeMetadata(m), PATH));
    expect(err.code).toBe('EDDY_CHECKPOINT_INCOMPATIBLE');
    expect(err.message).toBe(
      `checkpoint ${PATH} has format version 3; this eddy reads versions 1 and 2: restore it with the eddy version that wrote it`,
    );
    const sp = '/sp/savepoint-job-3-20260101T000000';
    expect(
      errorOf(() => decodeMetadata(encodeMetadata({ ...m, formatVersion: 9 }), sp)).message,
    ).toBe(
      `savepoint ${sp} has format version 9; this eddy reads versions 1 and 2: restore it with the eddy version that wrote it`,
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

const ref = (name: string) => `../blocks/${name}`;

/** A valid incremental handle: chains over random shared files, bases first, then deltas. */
const incrementalHandle = (maxP: number): fc.Arbitrary<IncrementalKeyedStateHandle> =>
  fc
    .tuple(
      fc.nat(maxP - 1),
      fc.nat(maxP - 1),
      fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,12}\.keyed$/), { minLength: 1, maxLength: 4 }),
    )
    .chain(([a, b, names]) => {
      const [start, end] = [Math.min(a, b), Math.max(a, b)];
      const groups = Array.from({ length: end - start + 1 }, (_, i) => start + i);
      const block = fc.record({
        file: fc.nat(names.length - 1),
        offset: fc.nat(2 ** 40),
        length: fc.nat(99999),
        crc32: u32,
        records: fc.nat(),
      });
      return fc.record({
        type: fc.constant('incremental' as const),
        keyGroupRange: fc.constant([start, end] as const),
        files: fc.constant(names.map(ref)),
        chains: fc.subarray(groups).chain((kgs) =>
          fc.tuple(
            ...kgs.map((keyGroup) =>
              fc.record({
                keyGroup: fc.constant(keyGroup),
                entries: fc.nat(),
                blocks: fc.array(block, { minLength: 1, maxLength: 4 }),
              }),
            ),
          ),
        ),
        bytes: fc.nat(),
      });
    });

describe('incremental keyed handles in metadata', () => {
  const op = (keyed: unknown, maxParallelism = 8) => ({
    uid: 'a',
    name: 'a',
    parallelism: 2,
    maxParallelism,
    subtasks: [{ index: 1, keyed }],
  });
  /** Possibly malformed on purpose: the validator, not the type, has to catch it. */
  const meta = (keyed: unknown, formatVersion = CHECKPOINT_FORMAT_VERSION) =>
    ({
      ...fc.sample(metadata, { numRuns: 1, seed: 4 })[0]!,
      formatVersion,
      operators: [op(keyed)],
    }) as unknown as CheckpointMetadata;
  const valid: IncrementalKeyedStateHandle = {
    type: 'incremental',
    keyGroupRange: [4, 7],
    files: [ref('a-1-3-0badf00d.keyed'), ref('a-1-5-12345678.keyed')],
    chains: [
      {
        keyGroup: 4,
        entries: 2,
        blocks: [
          { file: 0, offset: 0, length: 10, crc32: 0xffffffff, records: 2 },
          { file: 1, offset: 7, length: 3, crc32: 0, records: 1 },
        ],
      },
      {
        keyGroup: 6,
        entries: 0,
        blocks: [{ file: 1, offset: 0, length: 7, crc32: 5, records: 0 }],
      },
    ],
    bytes: 10,
  };

  it('round-trip, mixed with full handles', () => {
    expect(decodeMetadata(encodeMetadata(meta(valid)), PATH)).toEqual(plain(meta(valid)));
    // A subtask without keyed state: no chains, no files.
    const empty = { ...valid, files: [], chains: [], bytes: 0 };
    expect(decodeMetadata(encodeMetadata(meta(empty)), PATH)).toEqual(plain(meta(empty)));
    fc.assert(
      fc.property(
        metadata,
        fc
          .integer({ min: 1, max: 64 })
          .chain((maxP) =>
            fc.tuple(fc.constant(maxP), fc.array(incrementalHandle(maxP), { maxLength: 3 })),
          ),
        (m, [maxParallelism, handles]) => {
          const withIncremental = {
            ...m,
            operators: [
              ...m.operators.filter((o) => o.uid !== '~inc'),
              {
                uid: '~inc',
                name: 'incremental',
                parallelism: Math.max(1, handles.length),
                maxParallelism: Math.max(maxParallelism, handles.length),
                subtasks: handles.map((keyed, index) => ({ index, keyed })),
              },
            ],
          };
          expect(decodeMetadata(encodeMetadata(withIncremental), PATH)).toEqual(
            plain(withIncremental),
          );
        },
      ),
      { numRuns: 40 },
    );
  });

  it('rejects each malformed field, naming it', () => {
    const at = 'operators\\[0\\]\\.subtasks\\[0\\]\\.keyed';
    const chain0 = valid.chains[0]!;
    const block0 = chain0.blocks[0]!;
    const withChain0 = (c: object) => ({
      ...valid,
      chains: [{ ...chain0, ...c }, valid.chains[1]],
    });
    const withBlock0 = (b: object) => withChain0({ blocks: [{ ...block0, ...b }] });
    const cases: Array<[unknown, string]> = [
      [{ ...valid, type: 'delta' }, `${at}\\.type must be 'incremental' or absent`],
      [{ ...valid, keyGroupRange: [4] }, `${at}\\.keyGroupRange must be \\[start, end\\]`],
      [{ ...valid, keyGroupRange: [-1, 7] }, `${at}\\.keyGroupRange\\[0\\] must be an integer`],
      [{ ...valid, keyGroupRange: [4, 8] }, `${at}\\.keyGroupRange\\[1\\] must be an integer`],
      [{ ...valid, keyGroupRange: [5, 4] }, `${at}\\.keyGroupRange\\[1\\] must be an integer`],
      [{ ...valid, keyGroupRange: [4.5, 7] }, `${at}\\.keyGroupRange\\[0\\]`],
      [
        { ...valid, files: [] },
        `${at}\\.chains\\[0\\]\\.blocks\\[0\\]\\.file must index the handle's files, which are none`,
      ],
      [{ ...valid, files: 'x' }, `${at}\\.files must be an array`],
      [{ ...valid, files: [ref('x'), 3] }, `${at}\\.files\\[1\\] must be a string`],
      [
        { ...valid, files: [ref('x'), ref('x')] },
        `${at}\\.files\\[1\\] '../blocks/x' appears twice`,
      ],
      [
        { ...valid, files: ['../blocks/../x', ref('y')] },
        `${at}\\.files\\[0\\] '../blocks/../x' is not a shared file reference`,
      ],
      [{ ...valid, files: [ref('x'), '../other/x'] }, `${at}\\.files\\[1\\] '../other/x' is not`],
      [{ ...valid, files: ['/etc/passwd', ref('y')] }, `${at}\\.files\\[0\\] '/etc/passwd' is not`],
      [{ ...valid, files: [ref('/etc/passwd'), ref('y')] }, `${at}\\.files\\[0\\]`],
      [{ ...valid, files: [ref('a/b'), ref('y')] }, `${at}\\.files\\[0\\]`],
      [{ ...valid, files: [ref(''), ref('y')] }, `${at}\\.files\\[0\\]`],
      [{ ...valid, files: ['x.keyed', ref('y')] }, `${at}\\.files\\[0\\]`],
      [{ ...valid, files: ['..\\\\shared\\\\x', ref('y')] }, `${at}\\.files\\[0\\]`],
      [{ ...valid, chains: {} }, `${at}\\.chains must be an array`],
      [
        withChain0({ keyGroup: 3 }),
        `${at}\\.chains\\[0\\]\\.keyGroup must be an integer in \\[4, 7\\]`,
      ],
      [withChain0({ keyGroup: 8 }), `${at}\\.chains\\[0\\]\\.keyGroup`],
      [
        withChain0({ keyGroup: 6 }),
        `${at}\\.chains\\[1\\]\\.keyGroup must be an integer in \\[7, 7\\]`,
      ],
      [{ ...valid, chains: [valid.chains[1], chain0] }, `${at}\\.chains\\[1\\]\\.keyGroup`],
      [withChain0({ entries: -1 }), `${at}\\.chains\\[0\\]\\.entries`],
      [withChain0({ entries: 1.5 }), `${at}\\.chains\\[0\\]\\.entries`],
      [withChain0({ blocks: [] }), `${at}\\.chains\\[0\\]\\.blocks must hold at least the base`],
      [withChain0({ blocks: undefined }), `${at}\\.chains\\[0\\]\\.blocks must be an array`],
      [
        withBlock0({ file: 2 }),
        `${at}\\.chains\\[0\\]\\.blocks\\[0\\]\\.file must be an integer in \\[0, 1\\]`,
      ],
      [withBlock0({ file: '0' }), `${at}\\.chains\\[0\\]\\.blocks\\[0\\]\\.file`],
      [withBlock0({ offset: -1 }), `${at}\\.chains\\[0\\]\\.blocks\\[0\\]\\.offset`],
      [withBlock0({ offset: 2 ** 53 }), `${at}\\.chains\\[0\\]\\.blocks\\[0\\]\\.offset`],
      [withBlock0({ length: 0.5 }), `${at}\\.chains\\[0\\]\\.blocks\\[0\\]\\.length`],
      [withBlock0({ crc32: 2 ** 32 }), `${at}\\.chains\\[0\\]\\.blocks\\[0\\]\\.crc32`],
      [withBlock0({ records: null }), `${at}\\.chains\\[0\\]\\.blocks\\[0\\]\\.records`],
      [{ ...valid, bytes: -1 }, `${at}\\.bytes must be an integer`],
      [{ ...valid, bytes: undefined }, `${at}\\.bytes must be an integer`],
    ];
    for (const [keyed, re] of cases) {
      const err = errorOf(() => decodeMetadata(encodeMetadata(meta(keyed)), PATH));
      expect(err.code, re).toBe('EDDY_CHECKPOINT_CORRUPT');
      expect(err.message).toMatch(new RegExp(re));
      expect(err.message).toContain(PATH);
    }
  });

  it('refuses incremental handles in format version 1, and outside paths in full handles', () => {
    const v1 = errorOf(() => decodeMetadata(encodeMetadata(meta(valid, 1)), PATH));
    expect(v1.message).toMatch(
      /keyed\.type 'incremental' needs format version 2, the metadata says 1/,
    );
    const full = { file: 'a-1.keyed', keyGroupRange: [4, 7], blocks: [], bytes: 0 };
    expect(decodeMetadata(encodeMetadata(meta(full, 1)), PATH).formatVersion).toBe(1);
    for (const file of ['../blocks/x.keyed', '../other/x', '/abs/x.keyed']) {
      const err = errorOf(() => decodeMetadata(encodeMetadata(meta({ ...full, file })), PATH));
      expect(err.message).toMatch(/keyed\.file '.*' is not a relative path inside the checkpoint/);
    }
  });
});
