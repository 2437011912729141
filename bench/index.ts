/**
 * Benchmark dispatcher: `npm run bench -- <name> [options]`.
 * Each benchmark lives in its own module, imported only when it is run.
 */

interface Bench {
  readonly description: string;
  /** Runs the benchmark with its own arguments; resolves to the process exit code. */
  readonly run: (args: string[]) => Promise<number>;
}

const BENCHES: Record<string, Bench> = {
  'keyed-sum': {
    description:
      'running sum per user over JSONL files: hand-written Node baseline vs eddy -p 1 and -p 2',
    run: async (args) => (await import('./keyed-sum.js')).main(args),
  },
  checkpoint: {
    description:
      'keyed-sum with 1M and 10M keys: checkpoint sync/async time, size, write rate vs disk, throughput dip, full vs incremental; incremental checkpoints of 1% updates: bytes and restore vs full',
    run: async (args) => (await import('./checkpoint.js')).main(args),
  },
  rescale: {
    description:
      'keyed state of 1M and 10M keys restored at a new parallelism: eddy vs read-all, per-key index, floor; eddy rescale pause vs state size (100k-5M keys), full vs incremental',
    run: async (args) => (await import('./rescale.js')).main(args),
  },
  'state-backends': {
    description:
      'count per key over 1M, 10M and 100M keys at -p 2: heap vs on-disk keyed state backend, throughput, peak RSS (anonymous / file-backed), checkpoint and restore time',
    run: async (args) => (await import('./state-backends.js')).main(args),
  },
  'many-subtasks': {
    description:
      'keyed-sum on a small input at p=2 and p=128 on the same worker threads: time to running, peak RSS, exact output',
    run: async (args) => (await import('./many-subtasks.js')).main(args),
  },
  sessions: {
    description:
      'event-time session windows per user over 5M events: hand-written Node baseline vs eddy -p 1 and -p 2, state size',
    run: async (args) => (await import('./sessions.js')).main(args),
  },
  nexmark: {
    description:
      'Nexmark queries (examples/nexmark) on 10M generated events at -p 1 and -p 2: events/s, per core beside Flink 1.13, state size, peak RSS',
    run: async (args) => (await import('./nexmark.js')).main(args),
  },
  connectors: {
    description:
      'NATS JetStream -> running total per user -> PostgreSQL: hand-written Node consumer (at least once) vs eddy -p 1 and -p 2 (exactly once)',
    run: async (args) => (await import('./connectors.js')).main(args),
  },
  cluster: {
    description:
      'keyed-sum at p=2: 2 worker processes with 1 slot each (eddy master/worker, TCP) vs 2 threads of one process',
    run: async (args) => (await import('./cluster.js')).main(args),
  },
  'cli-startup': {
    description:
      'start-up of `eddy --help`, `eddy list`, `eddy inspect` against `node -e 0` (budget: 3x)',
    run: async (args) => (await import('./cli-startup.js')).main(args),
  },
};

const usage = (): string => {
  const width = Math.max(...Object.keys(BENCHES).map((n) => n.length));
  const lines = Object.entries(BENCHES).map(
    ([name, b]) => `  ${name.padEnd(width)}  ${b.description}`,
  );
  return [
    'usage: npm run bench -- <name> [options]   (<name> --help for its options)',
    '',
    'benchmarks:',
    ...lines,
  ].join('\n');
};

const [name, ...rest] = process.argv.slice(2);
if (name === undefined) {
  console.error(usage());
  process.exitCode = 2;
} else if (name === '--help' || name === '-h' || name === 'list') {
  console.log(usage());
} else {
  const bench = Object.hasOwn(BENCHES, name) ? BENCHES[name] : undefined;
  if (bench === undefined) {
    console.error(`unknown benchmark '${name}'\n\n${usage()}`);
    process.exitCode = 2;
  } else {
    process.exitCode = await bench.run(rest);
  }
}
