/**
 * Delta blocks of incremental checkpoints (keyed-block.ts): encode/decode round trip, the
 * "no deletions = base block" byte identity, refusal of deletions where a base is expected,
 * malformed deleted lists, and the semantics of applying a chain.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EddyError } from '../core/errors.js';
import type { NormalizedKey, StateKind } from '../state/types.js';
import { MsgpackWriter, packBlock } from './block-codec.js';
import {
  applyChain,
  type DecodedBlock,
  decodeBlock,
  decodeKeyGroupBlock,
  encodeKeyGroupBlock,
  type KeyGroupDelta,
  writeKeyGroupDelta,
} from './keyed-block.js';

const SEED = 0x5eed_0d17;

const encodeDelta = (delta: KeyGroupDelta): Buffer => {
  const w = new MsgpackWriter(256);
  writeKeyGroupDelta(w, delta);
  return Buffer.from(w.bytes());
};

const corruptCode = (f: () => unknown): EddyError => {
  try {
    f();
  } catch (e) {
    if (e instanceof EddyError) return e;
    throw e;
  }
  throw new Error('expected an EddyError');
};

/** -0 comes back as 0 from msgpack; NaN is a fine key but makes the models awkward. */
const num = fc.double({ noNaN: true }).map((d) => (Object.is(d, -0) ? 0 : d));
const key: fc.Arbitrary<NormalizedKey> = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.integer(),
  num,
  fc.boolean(),
);
/** Plain data: what state values of real jobs are (no undefined: it means "no entry"). */
const plain: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.string({ maxLength: 6 }),
    fc.integer(),
    num,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 4 }), tie('v'), { maxKeys: 3, noNullPrototype: true }),
  ),
})).v;
const kind = fc.option(
  fc.constantFrom<StateKind>('value', 'list', 'map', 'reducing', 'aggregating'),
  { nil: undefined },
);

const stateDelta = (name: string) =>
  fc
    .record({
      kind,
      entries: fc.uniqueArray(fc.tuple(key, plain), {
        maxLength: 5,
        selector: ([k]) => k,
        comparator: 'SameValueZero',
      }),
      deleted: fc.uniqueArray(key, { maxLength: 4, comparator: 'SameValueZero' }),
    })
    .map(({ kind, entries, deleted }) => ({
      name,
      ...(kind === undefined ? {} : { kind }),
      entries,
      deleted,
    }));

const delta: fc.Arbitrary<KeyGroupDelta> = fc
  .record({
    keyGroup: fc.nat(1 << 15),
    names: fc.uniqueArray(fc.constantFrom('a', 'count', 'list', 'm', '\u00e9t\u00e9', ''), {
      maxLength: 4,
    }),
  })
  .chain(({ keyGroup, names }) =>
    fc
      .tuple(...[...names].sort().map(stateDelta))
      .map((states): KeyGroupDelta => ({ keyGroup, states })),
  );

/** What decodeBlock must give for `d`: states with neither entries nor deletions left out. */
const expectedDecoded = (d: KeyGroupDelta): DecodedBlock => ({
  keyGroup: d.keyGroup,
  states: d.states
    .filter((s) => s.entries.length > 0 || s.deleted.length > 0)
    .map((s) => ({
      name: s.name,
      ...(s.kind === undefined ? {} : { kind: s.kind }),
      entries: s.entries,
      ...(s.deleted.length > 0 ? { deleted: s.deleted } : {}),
    })),
});

describe('delta block encode/decode', () => {
  it('round-trips entries and deleted keys (property)', () => {
    fc.assert(
      fc.property(delta, (d) => {
        expect(decodeBlock(encodeDelta(d))).toStrictEqual(expectedDecoded(d));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('writes a delta without deletions byte for byte as the base block of its entries', () => {
    fc.assert(
      fc.property(delta, (d) => {
        const noDeletions = {
          keyGroup: d.keyGroup,
          states: d.states.map((s) => ({ ...s, deleted: [] })),
        };
        const base = {
          keyGroup: d.keyGroup,
          states: d.states
            .filter((s) => s.entries.length > 0)
            .map((s) => ({
              name: s.name,
              ...(s.kind === undefined ? {} : { kind: s.kind }),
              entries: s.entries,
            })),
        };
        const bytes = encodeDelta(noDeletions);
        expect(bytes.equals(Buffer.from(encodeKeyGroupBlock(base)))).toBe(true);
        // and so it is accepted where a base block is expected
        expect(decodeKeyGroupBlock(bytes)).toStrictEqual(base);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('encodes values the fast writer does not cover (Maps, bigints) through msgpackr', () => {
    const d: KeyGroupDelta = {
      keyGroup: 3,
      states: [
        {
          name: 'x',
          kind: 'value',
          entries: [['k', { at: new Map([[1, 2n]]) }]],
          deleted: ['gone', 7],
        },
      ],
    };
    const decoded = decodeBlock(encodeDelta(d));
    expect(decoded.states[0]!.entries).toEqual([['k', { at: new Map([[1, 2n]]) }]]);
    expect(decoded.states[0]!.deleted).toEqual(['gone', 7]);
  });

  it('leaves out states with neither entries nor deletions, and an empty delta has no states', () => {
    const d: KeyGroupDelta = {
      keyGroup: 9,
      states: [
        { name: 'a', entries: [], deleted: [] },
        { name: 'b', kind: 'map', entries: [], deleted: ['x'] },
        { name: 'c', entries: [], deleted: [] },
      ],
    };
    expect(decodeBlock(encodeDelta(d))).toStrictEqual({
      keyGroup: 9,
      states: [{ name: 'b', kind: 'map', entries: [], deleted: ['x'] }],
    });
    expect(decodeBlock(encodeDelta({ keyGroup: 1, states: [] }))).toStrictEqual({
      keyGroup: 1,
      states: [],
    });
  });

  it('decodeKeyGroupBlock refuses a block with deletions (a delta where a base belongs)', () => {
    const bytes = encodeDelta({
      keyGroup: 4,
      states: [
        { name: 'a', kind: 'value', entries: [['k', 1]], deleted: [] },
        { name: 'b', kind: 'value', entries: [], deleted: ['z'] },
      ],
    });
    expect(decodeBlock(bytes).states[1]!.deleted).toEqual(['z']);
    const e = corruptCode(() => decodeKeyGroupBlock(bytes, 'key group 4 in file f.keyed'));
    expect(e.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(e.message).toContain('key group 4 in file f.keyed');
    expect(e.message).toContain('deleted');
  });

  it('an explicit empty deleted list marks a delta state, refused as a base', () => {
    // An explicit, even empty, fourth element marks a delta state: decodeBlock keeps it.
    const raw = packBlock([2, [['s', 'value', [['k', 1]], []]]]);
    expect(decodeBlock(raw).states[0]!.deleted).toEqual([]);
    expect(corruptCode(() => decodeKeyGroupBlock(raw)).code).toBe('EDDY_CHECKPOINT_CORRUPT');
  });

  it.each([
    ['not an array', 'nope'],
    ['an object', { 0: 'a' }],
    ['holding null', [null]],
    ['holding an object', [{ k: 1 }]],
    ['holding an array', [['a']]],
    ['holding a string and null', ['a', null]],
  ])('rejects deleted keys %s with EDDY_CHECKPOINT_CORRUPT naming the block', (_, deleted) => {
    const raw = packBlock([5, [['counts', 'map', [['k', [[1, 2]]]], deleted]]]);
    const e = corruptCode(() => decodeBlock(raw, 'key group 5 (block 2 of its chain) in f'));
    expect(e.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(e.message).toContain('key group 5 (block 2 of its chain) in f');
    expect(e.message).toContain("'counts'");
  });

  it('rejects a state of five elements', () => {
    const raw = packBlock([5, [['s', 'value', [], [], []]]]);
    expect(corruptCode(() => decodeBlock(raw)).code).toBe('EDDY_CHECKPOINT_CORRUPT');
  });
});

const block = (
  keyGroup: number,
  states: Array<[string, Array<[NormalizedKey, unknown]>, NormalizedKey[]?, StateKind?]>,
): DecodedBlock => ({
  keyGroup,
  states: states.map(([name, entries, deleted, kind]) => ({
    name,
    ...(kind === undefined ? {} : { kind }),
    entries,
    ...(deleted === undefined ? {} : { deleted }),
  })),
});

describe('applyChain', () => {
  it('removes deleted keys, then sets written entries; a rewritten key keeps its place', () => {
    const base = block(1, [
      [
        's',
        [
          ['a', 1],
          ['b', 2],
          ['c', 3],
        ],
      ],
    ]);
    const d1 = block(1, [
      [
        's',
        [
          ['b', 20],
          ['d', 4],
        ],
        ['c'],
      ],
    ]);
    expect(applyChain(1, [base, d1])).toEqual({
      keyGroup: 1,
      states: [
        {
          name: 's',
          entries: [
            ['a', 1],
            ['b', 20],
            ['d', 4],
          ],
        },
      ],
    });
  });

  it('applies delete before set inside one block (the key is re-created, last)', () => {
    const base = block(1, [
      [
        's',
        [
          ['a', 1],
          ['b', 2],
        ],
      ],
    ]);
    const d1 = block(1, [['s', [['a', 10]], ['a']]]);
    expect(applyChain(1, [base, d1]).states[0]!.entries).toEqual([
      ['b', 2],
      ['a', 10],
    ]);
  });

  it('applies blocks in chain order: set then delete is gone, delete then set is back', () => {
    const base = block(2, [['s', [['k', 1]]]]);
    const del = block(2, [['s', [['other', 5]], ['k']]]);
    const set = block(2, [['s', [['k', 3]]]]);
    expect(applyChain(2, [base, set, del]).states[0]!.entries).toEqual([['other', 5]]);
    expect(applyChain(2, [base, del, set]).states[0]!.entries).toEqual([
      ['other', 5],
      ['k', 3],
    ]);
    // the latest write of a key wins
    const set2 = block(2, [['s', [['k', 4]]]]);
    expect(applyChain(2, [base, set, set2]).states[0]!.entries).toEqual([['k', 4]]);
  });

  it('sorts states by name and drops states left empty', () => {
    const base = block(3, [
      ['m', [['k', 1]], undefined, 'value'],
      ['z', [['k', [1]]], undefined, 'list'],
    ]);
    const d1 = block(3, [
      ['z', [], ['k'], 'list'],
      ['b', [['x', 1]], undefined, 'reducing'],
    ]);
    const d2 = block(3, [['a', [['y', [['p', 1]]]], [], 'map']]);
    expect(applyChain(3, [base, d1, d2])).toEqual({
      keyGroup: 3,
      states: [
        { name: 'a', kind: 'map', entries: [['y', [['p', 1]]]] },
        { name: 'b', kind: 'reducing', entries: [['x', 1]] },
        { name: 'm', kind: 'value', entries: [['k', 1]] },
      ],
    });
    // every state emptied: a key group without states
    const gone = block(3, [
      ['m', [], ['k'], 'value'],
      ['z', [], ['k'], 'list'],
    ]);
    expect(applyChain(3, [base, gone])).toEqual({ keyGroup: 3, states: [] });
  });

  it('keeps kinds: a state without kind in a block does not lose the kind an earlier one gave', () => {
    const base = block(4, [['s', [['k', 1]], undefined, 'value']]);
    const d1 = block(4, [['s', [['j', 2]]]]);
    expect(applyChain(4, [base, d1]).states[0]!.kind).toBe('value');
  });

  it('gives the key group of the argument, and a lone base block as it is', () => {
    const base = block(6, [['s', [['k', 1]]]]);
    expect(applyChain(6, [base])).toEqual({
      keyGroup: 6,
      states: [{ name: 's', entries: [['k', 1]] }],
    });
  });

  it('the diffs of a sequence of states, applied as a chain, give the last state (property)', () => {
    // Each version is one state's key -> value map; consecutive versions are diffed the way
    // the heap backend's delta view does (written keys with values, removed keys as deleted).
    const version = fc.uniqueArray(
      fc.tuple(fc.constantFrom('a', 'b', 'c', 'd', 1, 2, true), plain),
      {
        maxLength: 6,
        selector: ([k]) => k,
      },
    );
    fc.assert(
      fc.property(fc.array(version, { minLength: 1, maxLength: 6 }), (versions) => {
        const blocks: DecodedBlock[] = [];
        let prev = new Map<NormalizedKey, unknown>();
        versions.forEach((v, i) => {
          const now = new Map<NormalizedKey, unknown>(v as Array<[NormalizedKey, unknown]>);
          const entries = [...now].filter(([k, val]) => i === 0 || prev.get(k) !== val);
          const deleted = i === 0 ? [] : [...prev.keys()].filter((k) => !now.has(k));
          const d: KeyGroupDelta = {
            keyGroup: 7,
            states: [{ name: 's', kind: 'value', entries, deleted }],
          };
          blocks.push(decodeBlock(encodeDelta(d)));
          prev = now;
        });
        const got = applyChain(7, blocks);
        const sorted = (e: ReadonlyArray<readonly [NormalizedKey, unknown]>) =>
          [...e].sort((x, y) => (String(x[0]) < String(y[0]) ? -1 : 1));
        const last = versions[versions.length - 1]!;
        if (last.length === 0) expect(got.states).toEqual([]);
        else expect(sorted(got.states[0]!.entries)).toEqual(sorted(last));
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});
