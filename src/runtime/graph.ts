/**
 * The job graph: operators (nodes) and the edges between them. Built by the API layer in
 * every thread from the same job module, so it must be deterministic; `fingerprint` lets
 * workers prove they built the same graph as the coordinator.
 */
import type { Key } from '../keygroups/index.js';
import type { Sink, Source } from './io.js';
import type { StreamOperator } from './operator.js';
import type { WatermarkStrategy } from './watermarks.js';

export type Partitioning =
  /** Subtask i feeds subtask i; requires equal parallelism. */
  | { readonly kind: 'forward' }
  /** Round-robin over all downstream subtasks. */
  | { readonly kind: 'rebalance' }
  /** Every record to every downstream subtask. */
  | { readonly kind: 'broadcast' }
  /** By key group of the key: Flink's routing, so state rescales by key-group ranges. */
  | { readonly kind: 'hash'; readonly keySelector: (record: unknown) => Key };

export interface JobEdge {
  readonly source: number;
  readonly target: number;
  readonly partitioning: Partitioning;
  /** Set when the edge carries the source's side output with this tag id, not its main output. */
  readonly sideOutput?: string | undefined;
  /**
   * Set when the edge carries each record's event time beside it (a stream whose timestamps
   * are not a function of its records, e.g. after map): how to read it at the sender.
   */
  readonly timestamps?: ((record: unknown) => number) | undefined;
  /**
   * Set when the edge feeds the target's second input (a two-input operator: connect,
   * broadcast state, joins); absent for the first (or only) input.
   */
  readonly input?: 2 | undefined;
}

interface NodeBase {
  readonly id: number;
  readonly uid: string;
  readonly name: string;
  readonly parallelism: number;
  readonly maxParallelism: number;
}

export interface SourceNode extends NodeBase {
  readonly kind: 'source';
  readonly source: Source<unknown>;
  /** Event time: timestamps and per-split watermarks generated at the source. */
  readonly watermarks?: WatermarkStrategy<unknown> | undefined;
}

export interface OperatorNode extends NodeBase {
  readonly kind: 'operator';
  /** Set on operators fed by a hash edge: they get a keyed state backend. */
  readonly keySelector: ((record: unknown) => Key) | undefined;
  readonly createOperator: () => StreamOperator;
  /** The sink of a sink operator, for its job-wide hook (`Sink.initializeGlobal`). */
  readonly sink?: Sink<unknown> | undefined;
}

export type JobNode = SourceNode | OperatorNode;

export interface JobGraph {
  readonly name: string;
  readonly nodes: readonly JobNode[];
  readonly edges: readonly JobEdge[];
}

export const fingerprint = (g: JobGraph): string =>
  JSON.stringify([
    g.name,
    g.nodes.map((n) => [n.id, n.kind, n.uid, n.parallelism, n.maxParallelism]),
    g.edges.map((e) => [e.source, e.target, e.partitioning.kind, e.sideOutput ?? '', e.input ?? 1]),
  ]);
