import { expectTypeOf, test } from 'vitest';
import type {
  AggregatingStateDescriptor,
  ListStateDescriptor,
  MapStateDescriptor,
  ReducingStateDescriptor,
  StateFor,
  ValueStateDescriptor,
} from './descriptors.js';
import type { AggregatingState, ListState, MapState, ReducingState, ValueState } from './types.js';

test('StateFor maps each descriptor to its state interface', () => {
  expectTypeOf<StateFor<ValueStateDescriptor<number>>>().toEqualTypeOf<ValueState<number>>();
  expectTypeOf<StateFor<ListStateDescriptor<string>>>().toEqualTypeOf<ListState<string>>();
  expectTypeOf<StateFor<MapStateDescriptor<string, boolean>>>().toEqualTypeOf<
    MapState<string, boolean>
  >();
  expectTypeOf<StateFor<ReducingStateDescriptor<bigint>>>().toEqualTypeOf<ReducingState<bigint>>();
  expectTypeOf<StateFor<AggregatingStateDescriptor<string, number[], number>>>().toEqualTypeOf<
    AggregatingState<string, number>
  >();
});

test('getState infers the state type from the descriptor', async () => {
  const { HeapKeyedStateBackend } = await import('./heap-keyed-backend.js');
  const { ValueStateDescriptor, MapStateDescriptor } = await import('./descriptors.js');
  const backend = new HeapKeyedStateBackend({
    keyGroupRange: { start: 0, end: 0 },
    maxParallelism: 1,
  });
  expectTypeOf(backend.getState(new ValueStateDescriptor<number>('v'))).toEqualTypeOf<
    ValueState<number>
  >();
  expectTypeOf(backend.getState(new MapStateDescriptor<string, Date>('m'))).toEqualTypeOf<
    MapState<string, Date>
  >();
});
