/**
 * Vectors computed with Java from Flink's own formulas (KeyGroupRangeAssignment, MathUtils):
 * every one must hold, so string and int keys land in the key groups Flink assigns.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assignToKeyGroup } from './assign.js';
import { javaStringHashCode, keyHashCode } from './hash.js';
import { defaultMaxParallelism } from './parallelism.js';
import { computeKeyGroupRange, operatorIndexForKeyGroup } from './ranges.js';

interface FlinkVectors {
  stringKeys: { key: string; hashCode: number; keyGroup: Record<string, number> }[];
  intKeys: { key: number; keyGroup: Record<string, number> }[];
  ranges: {
    maxParallelism: number;
    parallelism: number;
    operatorIndex: number;
    start: number;
    end: number;
  }[];
  operatorIndexForKeyGroup: {
    maxParallelism: number;
    parallelism: number;
    keyGroup: number;
    operatorIndex: number;
  }[];
  defaultMaxParallelism: { parallelism: number; maxParallelism: number }[];
}

const vectors = JSON.parse(
  readFileSync(new URL('./fixtures/flink-keygroups.json', import.meta.url), 'utf8'),
) as FlinkVectors;

const keyGroupCases = (byMaxP: Record<string, number>) =>
  Object.entries(byMaxP).map(([maxP, kg]) => [Number(maxP), kg] as const);

describe('Flink vectors', () => {
  it('holds vectors of every kind', () => {
    expect(vectors.stringKeys.length).toBeGreaterThan(0);
    expect(vectors.intKeys.length).toBeGreaterThan(0);
    expect(vectors.ranges.length).toBeGreaterThan(0);
    expect(vectors.operatorIndexForKeyGroup.length).toBeGreaterThan(0);
    expect(vectors.defaultMaxParallelism.length).toBeGreaterThan(0);
  });

  it.each(vectors.stringKeys)('string key $key', ({ key, hashCode, keyGroup }) => {
    expect(javaStringHashCode(key)).toBe(hashCode);
    expect(keyHashCode(key)).toBe(hashCode);
    for (const [maxP, kg] of keyGroupCases(keyGroup)) expect(assignToKeyGroup(key, maxP)).toBe(kg);
  });

  it.each(vectors.intKeys)('int key $key', ({ key, keyGroup }) => {
    expect(keyHashCode(key)).toBe(key);
    for (const [maxP, kg] of keyGroupCases(keyGroup)) expect(assignToKeyGroup(key, maxP)).toBe(kg);
  });

  it.each(vectors.ranges)(
    'range of subtask $operatorIndex, p $parallelism, maxP $maxParallelism',
    ({ maxParallelism, parallelism, operatorIndex, start, end }) => {
      expect(computeKeyGroupRange(maxParallelism, parallelism, operatorIndex)).toEqual({
        start,
        end,
      });
    },
  );

  it.each(vectors.operatorIndexForKeyGroup)(
    'owner of key group $keyGroup, p $parallelism, maxP $maxParallelism',
    ({ maxParallelism, parallelism, keyGroup, operatorIndex }) => {
      expect(operatorIndexForKeyGroup(maxParallelism, parallelism, keyGroup)).toBe(operatorIndex);
    },
  );

  it.each(vectors.defaultMaxParallelism)(
    'default maxParallelism for p $parallelism',
    ({ parallelism, maxParallelism }) => {
      expect(defaultMaxParallelism(parallelism)).toBe(maxParallelism);
    },
  );
});
