/**
 * The job builder. Every stream operation appends a node (and its input edges) to a graph
 * that the runtime executes; building is deterministic so every worker builds the same one.
 */
import { InvalidArgumentError } from '../core/errors.js';
import {
  defaultMaxParallelism,
  validateParallelism,
  validateParallelismWithState,
} from '../keygroups/index.js';
import type { JobEdge, JobGraph, JobNode, Partitioning } from '../runtime/graph.js';
import type { Sink, Source } from '../runtime/io.js';
import type { StreamOperator } from '../runtime/operator.js';
import type { WatermarkStrategy } from '../runtime/watermarks.js';
import { DataStream } from './datastream.js';

/** Per-operator options: name, uid, parallelism, maxParallelism. */
export interface OperatorOptions {
  /** Display name (logs, errors, progress). */
  readonly name?: string;
  /**
   * Stable id mapping this operator's state across job versions. Set it on stateful operators
   * (keyed process, reduce, windows, process functions with operator state, sources, sinks):
   * without one, the uid is derived from the operator's position in the graph, inserting an
   * operator before it changes it, and a restore no longer finds its state (eddy warns).
   */
  readonly uid?: string;
  readonly parallelism?: number;
  /** Key groups of this operator's keyed state; fixed once the job has state. */
  readonly maxParallelism?: number;
}

/** Options of `fromSource`: operator options plus the watermark strategy. */
export interface SourceOptions<T> extends OperatorOptions {
  /**
   * Event time: the records' timestamps and how watermarks follow them. Watermarks are
   * tracked per split (per file for the file source) and combined by the minimum over the
   * unfinished splits, so a record is never late merely because its split was read later.
   */
  readonly watermarks?: WatermarkStrategy<T>;
}

/** How an environment builds its job: name, default parallelism, max parallelism. */
export interface EnvironmentConfig {
  readonly jobName: string;
  /** Default parallelism of every operator. */
  readonly parallelism: number;
  /** Job-wide maxParallelism; default per operator: defaultMaxParallelism(parallelism). */
  readonly maxParallelism?: number | undefined;
  /** Parallelism per operator uid, winning over the job's code (used by `eddy rescale`). */
  readonly parallelismOverrides?: Readonly<Record<string, number>> | undefined;
  /** maxParallelism per operator uid from restored state (when the job does not set one). */
  readonly restoredMaxParallelism?: Readonly<Record<string, number>> | undefined;
}

/** An input of a new node: the upstream node and how records are routed from it. */
export interface InputSpec {
  readonly node: number;
  readonly partitioning: Partitioning | undefined;
  /** The upstream node's side output with this tag id instead of its main output. */
  readonly sideOutput?: string | undefined;
  /**
   * Set when the edge must carry each record's event time (read with this at the sender):
   * the stream's timestamps are carried, not a function of its records (see DataStream).
   */
  readonly timestamps?: ((record: unknown) => number) | undefined;
  /** The new node's second input (a two-input operator); absent for the first. */
  readonly input?: 2 | undefined;
}

/** Builds a job's graph: `build(env)` of a {@link JobDefinition} receives one. */
export class StreamExecutionEnvironment {
  private readonly nodes: JobNode[] = [];
  private readonly edges: JobEdge[] = [];
  private readonly derivedUids: string[] = [];

  constructor(readonly config: EnvironmentConfig) {
    if (!Number.isInteger(config.parallelism) || config.parallelism < 1) {
      throw new InvalidArgumentError(
        `parallelism must be an integer >= 1, got ${config.parallelism}`,
        'EDDY_INVALID_PARALLELISM',
      );
    }
    if (config.maxParallelism !== undefined)
      validateParallelism(config.parallelism, config.maxParallelism);
  }

  /** The default parallelism of the job's operators. */
  get parallelism(): number {
    return this.config.parallelism;
  }

  /** Adds a source; its records start the stream. */
  fromSource<T>(source: Source<T>, options: SourceOptions<T> = {}): DataStream<T> {
    const watermarks = options.watermarks as WatermarkStrategy<unknown> | undefined;
    if (watermarks !== undefined && typeof watermarks.timestampOf !== 'function') {
      throw new InvalidArgumentError(
        'fromSource: `watermarks` must be a WatermarkStrategy with a timestamp assigner, e.g. WatermarkStrategy.forBoundedOutOfOrderness(5000).withTimestampAssigner((e) => e.ts)',
      );
    }
    const id = this.addNode(options, source.defaultName, true, (base) => ({
      ...base,
      kind: 'source',
      source: source as Source<unknown>,
      watermarks,
    }));
    return new DataStream<T>(
      this,
      [{ node: id, partitioning: undefined }],
      options.watermarks?.timestampOf,
    );
  }

  /** @internal Used by DataStream: appends an operator fed by `inputs`. */
  addOperator(
    inputs: readonly InputSpec[],
    defaultName: string,
    options: OperatorOptions,
    createOperator: () => StreamOperator,
    keySelector?: (record: unknown) => import('../keygroups/index.js').Key,
    /** Keeps state (keyed operators always do): warn when it has no explicit uid. */
    stateful: boolean = keySelector !== undefined,
    /** Set for a sink: its job-wide hook (`Sink.initializeGlobal`) runs in the job master. */
    sink?: Sink<unknown>,
  ): number {
    const id = this.addNode(options, defaultName, stateful, (base) => ({
      ...base,
      kind: 'operator',
      keySelector,
      createOperator,
      ...(sink === undefined ? {} : { sink }),
    }));
    const node = this.nodes[id]!;
    for (const input of inputs) {
      const upstream = this.nodes[input.node]!;
      const partitioning: Partitioning =
        input.partitioning ??
        (upstream.parallelism === node.parallelism ? { kind: 'forward' } : { kind: 'rebalance' });
      this.edges.push({
        source: input.node,
        target: id,
        partitioning,
        ...(input.sideOutput === undefined ? {} : { sideOutput: input.sideOutput }),
        ...(input.timestamps === undefined ? {} : { timestamps: input.timestamps }),
        ...(input.input === undefined ? {} : { input: input.input }),
      });
    }
    return id;
  }

  /**
   * @internal One line per stateful operator whose uid was derived from its position (no
   * `uid` option): the job runner logs them once (see api/job.ts).
   */
  uidWarnings(): readonly string[] {
    return this.derivedUids;
  }

  /** @internal Names the operators `inputs` come from, for build-time errors. */
  describeInputs(inputs: readonly InputSpec[]): string {
    return inputs
      .map((i) => {
        const n = this.nodes[i.node]!;
        return `'${n.name}' (uid ${n.uid})`;
      })
      .join(', ');
  }

  /** The graph built so far. */
  buildGraph(): JobGraph {
    return { name: this.config.jobName, nodes: [...this.nodes], edges: [...this.edges] };
  }

  private addNode(
    options: OperatorOptions,
    defaultName: string,
    stateful: boolean,
    make: (base: Omit<JobNode, 'kind' | 'source' | 'keySelector' | 'createOperator'>) => JobNode,
  ): number {
    const id = this.nodes.length;
    const name = options.name ?? defaultName;
    const uid = options.uid ?? `${slug(name)}-${id}`;
    const parallelism =
      this.config.parallelismOverrides?.[uid] ?? options.parallelism ?? this.config.parallelism;
    const maxParallelism =
      options.maxParallelism ??
      this.config.maxParallelism ??
      this.config.restoredMaxParallelism?.[uid] ??
      defaultMaxParallelism(parallelism);
    const restoredMaxP = this.config.restoredMaxParallelism?.[uid];
    // With state, raising --max-parallelism cannot help (the restore would refuse it): say so.
    if (restoredMaxP !== undefined) {
      validateParallelismWithState(`operator '${name}' (uid ${uid})`, parallelism, restoredMaxP);
    }
    validateParallelism(parallelism, maxParallelism);
    if (
      options.uid !== undefined &&
      (typeof options.uid !== 'string' || options.uid.length === 0)
    ) {
      throw new InvalidArgumentError(`operator '${name}': uid must be a non-empty string`);
    }
    if (stateful && options.uid === undefined) {
      this.derivedUids.push(
        `warning: stateful operator '${name}' has no uid; its uid '${uid}' is derived from its position in the job graph, so inserting or removing an operator before it changes the uid and a restore would not find its state. Set one explicitly: { uid: '${slug(name)}' }`,
      );
    }
    this.nodes.push(make({ id, uid, name, parallelism, maxParallelism }));
    return id;
  }
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '') || 'op';
