import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../core/errors.js';
import {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  ValueStateDescriptor,
} from './descriptors.js';

const sum = (a: number, b: number) => a + b;
const counter = {
  createAccumulator: () => 0,
  add: (_: string, acc: number) => acc + 1,
  getResult: (acc: number) => acc,
};

describe('state descriptors', () => {
  it('carry their kind and name', () => {
    expect(new ValueStateDescriptor<number>('v')).toMatchObject({ kind: 'value', name: 'v' });
    expect(new ListStateDescriptor<number>('l')).toMatchObject({ kind: 'list', name: 'l' });
    expect(new MapStateDescriptor<string, number>('m')).toMatchObject({ kind: 'map', name: 'm' });
    expect(new ReducingStateDescriptor('r', sum)).toMatchObject({ kind: 'reducing', reduce: sum });
    expect(new AggregatingStateDescriptor('a', counter)).toMatchObject({
      kind: 'aggregating',
      fn: counter,
    });
  });

  it('keep the value default', () => {
    expect(new ValueStateDescriptor('v', { defaultValue: 7 }).defaultValue).toBe(7);
    expect(new ValueStateDescriptor<number>('v').defaultValue).toBeUndefined();
  });

  it('reject an empty or non-string name', () => {
    expect(() => new ValueStateDescriptor('')).toThrow(InvalidArgumentError);
    expect(() => new ListStateDescriptor(42 as unknown as string)).toThrow(/non-empty string/);
    expect(() => new MapStateDescriptor(undefined as unknown as string)).toThrow(/map state name/);
  });

  it('reject a missing reduce or aggregate function', () => {
    const noFn = undefined as unknown as (a: number, b: number) => number;
    expect(() => new ReducingStateDescriptor('r', noFn)).toThrow(/reduce function/);
    const partial = { createAccumulator: () => 0 } as unknown as typeof counter;
    expect(() => new AggregatingStateDescriptor('a', partial)).toThrow(/AggregateFunction/);
  });
});
