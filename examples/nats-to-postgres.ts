/**
 * Running total per user, from NATS JetStream into PostgreSQL, exactly once.
 *
 *   eddy run examples/nats-to-postgres.ts --checkpoint-interval 1000 -- \
 *     --nats <url> --stream <name> --postgres <url> --table <name> [--bounded] [--rate <events/s>]
 *
 * Reads JSON messages {"user": string, "amount": number} from every subject of the JetStream
 * stream, keeps a running total per user in keyed value state, and appends one row
 * ("user" text, total double precision) per message to the table (created if missing).
 *
 * Exactly once needs checkpoints (--checkpoint-interval): the rows of a checkpoint are
 * committed together when it completes (two-phase commit; the server needs
 * max_prepared_transactions > 0). Without checkpoints rows are committed batch by batch and a
 * failure replays them (at least once). `--bounded` reads what the stream holds when the job
 * first starts, then ends; `--rate` limits the total read rate over all subjects.
 */
import { parseArgs } from 'node:util';
import {
  type Collector,
  defineJob,
  type KeyedContext,
  type KeyedProcessFunction,
  type KeyedRuntimeContext,
  NatsSource,
  PostgresSink,
  type ValueState,
  ValueStateDescriptor,
} from 'eddy';

interface Event {
  user: string;
  amount: number;
}

interface Total {
  user: string;
  total: number;
}

class RunningTotal implements KeyedProcessFunction<string, Event, Total> {
  private sum!: ValueState<number>;

  open(ctx: KeyedRuntimeContext): void {
    this.sum = ctx.getState(new ValueStateDescriptor<number>('total', { defaultValue: 0 }));
  }

  processElement(event: Event, ctx: KeyedContext<string>, out: Collector<Total>): void {
    const total = (this.sum.value() ?? 0) + event.amount;
    this.sum.update(total);
    out.collect({ user: ctx.currentKey, total });
  }
}

/** `a.b` → `"a"."b"`, as the sink reads its `table` option (each part an exact name). */
const quoteTable = (table: string): string =>
  table
    .split('.')
    .map((part) => `"${part.replaceAll('"', '""')}"`)
    .join('.');

export default defineJob({
  name: 'nats-to-postgres',
  build(env, args) {
    const { values } = parseArgs({
      args: [...args],
      options: {
        nats: { type: 'string' },
        stream: { type: 'string' },
        postgres: { type: 'string' },
        table: { type: 'string' },
        bounded: { type: 'boolean' },
        rate: { type: 'string' },
      },
    });
    if (!values.nats || !values.stream || !values.postgres || !values.table) {
      throw new Error(
        'nats-to-postgres needs -- --nats <url> --stream <name> --postgres <url> --table <name> [--bounded] [--rate <events/s>]',
      );
    }
    const rate = values.rate === undefined ? undefined : Number(values.rate);
    const source = NatsSource.of<Event>({
      servers: values.nats,
      stream: values.stream,
      bounded: values.bounded ?? false,
      ratePerSecond: rate,
    });
    const table = values.table;
    const sink = PostgresSink.append<Total>({
      url: values.postgres,
      table,
      columns: ['user', 'total'],
      toRow: (t) => [t.user, t.total],
      createTable: `CREATE TABLE IF NOT EXISTS ${quoteTable(table)} ("user" text NOT NULL, total double precision NOT NULL)`,
    });
    env
      .fromSource(source, { uid: 'events' })
      .keyBy((e) => e.user)
      .process(new RunningTotal(), { uid: 'running-total', name: 'running-total' })
      .sinkTo(sink, { uid: 'totals' });
  },
});
