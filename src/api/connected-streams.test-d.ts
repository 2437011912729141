import { describe, expectTypeOf, it } from 'vitest';
import { memorySource } from '../runtime/testing/memory.js';
import { MapStateDescriptor } from '../state/descriptors.js';
import type {
  BroadcastConnectedStream,
  BroadcastStream,
  ConnectedStreams,
  KeyedBroadcastConnectedStream,
  KeyedConnectedStreams,
} from './connected-streams.js';
import type { DataStream } from './datastream.js';
import { StreamExecutionEnvironment } from './environment.js';

interface Click {
  user: string;
  page: string;
}
interface Profile {
  id: string;
  age: number;
}

const env = new StreamExecutionEnvironment({ jobName: 't', parallelism: 1 });
const clicks = env.fromSource(memorySource<Click>([]));
const profiles = env.fromSource(memorySource<Profile>([]));
const rules = new MapStateDescriptor<string, number>('rules');

describe('two-input types', () => {
  it('flows each input type to its own method', () => {
    expectTypeOf(clicks.connect(profiles)).toEqualTypeOf<ConnectedStreams<Click, Profile>>();
    expectTypeOf(
      clicks.connect(profiles).map(
        (c) => c.page,
        (p) => p.id,
      ),
    ).toEqualTypeOf<DataStream<string>>();
    clicks.connect(profiles).process<number>({
      processElement1(c, _ctx, out) {
        expectTypeOf(c).toEqualTypeOf<Click>();
        out.collect(1);
      },
      processElement2(p, _ctx, out) {
        expectTypeOf(p).toEqualTypeOf<Profile>();
        out.collect(p.age);
      },
    });
  });

  it('connects keyed streams only on the same key type', () => {
    const keyed = clicks.keyBy((c) => c.user).connect(profiles.keyBy((p) => p.id));
    expectTypeOf(keyed).toEqualTypeOf<KeyedConnectedStreams<Click, Profile, string>>();
    keyed.process<string>({
      processElement1(c, ctx) {
        expectTypeOf(ctx.currentKey).toEqualTypeOf<string>();
        expectTypeOf(c).toEqualTypeOf<Click>();
      },
      processElement2(p) {
        expectTypeOf(p).toEqualTypeOf<Profile>();
      },
    });
    // @ts-expect-error string keys cannot meet number keys
    clicks.keyBy((c) => c.user).connect(profiles.keyBy((p) => p.age));
    // @ts-expect-error a keyed stream connects a keyed (or broadcast) stream
    clicks.keyBy((c) => c.user).connect(profiles);
  });

  it('gives a read-only broadcast state to processElement', () => {
    const b = profiles.broadcast(rules);
    expectTypeOf(b).toEqualTypeOf<BroadcastStream<Profile>>();
    expectTypeOf(clicks.connect(b)).toEqualTypeOf<BroadcastConnectedStream<Click, Profile>>();
    expectTypeOf(clicks.keyBy((c) => c.user).connect(b)).toEqualTypeOf<
      KeyedBroadcastConnectedStream<Click, Profile, string>
    >();
    clicks
      .keyBy((c) => c.user)
      .connect(b)
      .process<string>({
        processElement(_c, ctx) {
          const state = ctx.getBroadcastState(rules);
          expectTypeOf(state.get('x')).toEqualTypeOf<number | undefined>();
          // @ts-expect-error broadcast state is read-only in processElement
          state.put('x', 1);
        },
        processBroadcastElement(p, ctx) {
          ctx.getBroadcastState(rules).put(p.id, p.age);
        },
      });
  });
});
