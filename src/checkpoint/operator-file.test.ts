import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OperatorStateSnapshot } from '../state/types.js';
import { flipByte, makeTempDir, removeTempDir, stateValue } from './checkpoint.testkit.js';
import {
  planOperatorReads,
  readOperatorStateElements,
  writeOperatorStateFile,
} from './operator-file.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir();
});
afterAll(() => removeTempDir(dir));

const operatorSnapshot: fc.Arbitrary<OperatorStateSnapshot> = fc
  .uniqueArray(fc.string({ maxLength: 6 }), { maxLength: 4 })
  .chain((names) =>
    fc.tuple(
      ...names.map((name) =>
        fc.record({
          name: fc.constant(name),
          mode: fc.constantFrom('split' as const, 'union' as const, 'broadcast' as const),
          elements: fc.array(stateValue, { maxLength: 6 }),
        }),
      ),
    ),
  )
  .map((states) => ({ states }));

const sample: OperatorStateSnapshot = {
  states: [
    {
      name: 'offsets',
      mode: 'split',
      elements: [
        { p: 0, o: 10n },
        { p: 1, o: 20n },
        { p: 2, o: 5n },
      ],
    },
    { name: 'assignments', mode: 'union', elements: [new Map([['a', 1]]), ['b', 2]] },
    { name: 'rules', mode: 'broadcast', elements: [] },
  ],
};

describe('operator state files', () => {
  it('round-trip every state with its mode and elements', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(operatorSnapshot, async (snapshot) => {
        const handle = await writeOperatorStateFile(dir, `op-${n++}.opstate`, snapshot);
        expect(handle.states.map((s) => [s.name, s.mode, s.elements.length])).toEqual(
          snapshot.states.map((s) => [s.name, s.mode, s.elements.length]),
        );
        const { bytesRead, ...back } = await readOperatorStateElements(dir, handle);
        expect(back).toEqual(snapshot);
        expect(bytesRead).toBe(handle.bytes);
      }),
      { numRuns: 60 },
    );
  });

  it('read only the selected elements, in the requested order', async () => {
    const handle = await writeOperatorStateFile(dir, 'sel.opstate', sample);
    const got = await readOperatorStateElements(dir, handle, [
      { name: 'offsets', indices: [2, 0] },
      { name: 'assignments' },
    ]);
    expect(got.states).toEqual([
      {
        name: 'offsets',
        mode: 'split',
        elements: [
          { p: 2, o: 5n },
          { p: 0, o: 10n },
        ],
      },
      { name: 'assignments', mode: 'union', elements: [new Map([['a', 1]]), ['b', 2]] },
    ]);
    const offsets = handle.states[0]!.elements;
    const assignments = handle.states[1]!.elements;
    const expected = [offsets[0]!, offsets[2]!, ...assignments].reduce((s, b) => s + b.length, 0);
    expect(got.bytesRead).toBe(expected);
    // offsets[2] and assignments are back to back in the file: one read; offsets[0] is apart.
    expect(
      planOperatorReads(handle, [{ name: 'offsets', indices: [2, 0] }, { name: 'assignments' }]),
    ).toHaveLength(2);
  });

  it('refuse unknown states, bad indices and duplicate names', async () => {
    const handle = await writeOperatorStateFile(dir, 'bad.opstate', sample);
    await expect(readOperatorStateElements(dir, handle, [{ name: 'nope' }])).rejects.toThrow(
      /'nope' is not in/,
    );
    await expect(
      readOperatorStateElements(dir, handle, [{ name: 'offsets', indices: [3] }]),
    ).rejects.toThrow(/out of range/);
    await expect(
      readOperatorStateElements(dir, handle, [{ name: 'offsets', indices: [1, 1] }]),
    ).rejects.toThrow(/repeated/);
    const twice = { states: [sample.states[0]!, sample.states[0]!] };
    await expect(writeOperatorStateFile(dir, 'twice.opstate', twice)).rejects.toThrow(
      /appears twice/,
    );
  });

  it('a flipped byte fails that element only, naming file, state and element', async () => {
    const handle = await writeOperatorStateFile(dir, 'flip.opstate', sample);
    const path = join(dir, 'flip.opstate');
    const target = handle.states[0]!.elements[1]!;
    await writeFile(path, flipByte(await readFile(path), target.offset));
    const err = await readOperatorStateElements(dir, handle).catch((e) => e);
    expect(err.code).toBe('EDDY_CHECKPOINT_CORRUPT');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/element 1 of operator state 'offsets'.*CRC-32/);
    const rest = await readOperatorStateElements(dir, handle, [
      { name: 'offsets', indices: [0, 2] },
    ]);
    expect(rest.states[0]!.elements).toEqual([
      { p: 0, o: 10n },
      { p: 2, o: 5n },
    ]);
  });

  it('a missing file is named', async () => {
    const handle = await writeOperatorStateFile(dir, 'gone.opstate', sample);
    await rm(join(dir, 'gone.opstate'));
    await expect(readOperatorStateElements(dir, handle)).rejects.toThrow(
      /gone\.opstate is missing/,
    );
  });
});
