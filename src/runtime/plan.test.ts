import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JobEdge, JobGraph, JobNode, Partitioning } from './graph.js';
import { planExecution } from './plan.js';

const node = (
  id: number,
  parallelism: number,
  kind: 'source' | 'operator' = 'operator',
): JobNode =>
  kind === 'source'
    ? {
        id,
        uid: `n${id}`,
        name: `n${id}`,
        parallelism,
        maxParallelism: 128,
        kind,
        source: {} as never,
      }
    : {
        id,
        uid: `n${id}`,
        name: `n${id}`,
        parallelism,
        maxParallelism: 128,
        kind,
        keySelector: undefined,
        createOperator: () => ({}) as never,
      };

const edge = (source: number, target: number, kind: Partitioning['kind'] = 'forward'): JobEdge => ({
  source,
  target,
  partitioning: kind === 'hash' ? { kind, keySelector: (r) => r as string } : { kind },
});

describe('planExecution', () => {
  it('chains forward edges of equal parallelism and keeps hash edges as channels', () => {
    const g: JobGraph = {
      name: 'j',
      nodes: [node(0, 2, 'source'), node(1, 2), node(2, 2), node(3, 2)],
      edges: [edge(0, 1), edge(1, 2, 'hash'), edge(2, 3)],
    };
    const plan = planExecution(g);
    expect(plan.chains.map((c) => c.nodeIds)).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(plan.channels).toHaveLength(4);
    expect(plan.workers).toBe(2);
  });

  it('does not chain across fan-out or fan-in', () => {
    const g: JobGraph = {
      name: 'j',
      nodes: [node(0, 1, 'source'), node(1, 1), node(2, 1), node(3, 1)],
      edges: [edge(0, 1), edge(0, 2), edge(1, 3), edge(2, 3)],
    };
    expect(planExecution(g).chains.map((c) => c.nodeIds)).toEqual([[0], [1], [2], [3]]);
  });

  it('refuses forward edges between different parallelisms, naming both operators', () => {
    const g: JobGraph = {
      name: 'j',
      nodes: [node(0, 2, 'source'), node(1, 3)],
      edges: [edge(0, 1)],
    };
    expect(() => planExecution(g)).toThrow(/'n0'.*parallelism 2.*'n1'.*parallelism 3/);
  });

  it('connects every sender to every receiver it may route to, exactly once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.constantFrom<Partitioning['kind']>('rebalance', 'hash', 'broadcast'),
        fc.constantFrom('per-subtask' as const, 'single' as const),
        (ps, pt, kind, placement) => {
          const g: JobGraph = {
            name: 'j',
            nodes: [node(0, ps, 'source'), node(1, pt)],
            edges: [edge(0, 1, kind)],
          };
          const plan = planExecution(g, placement);
          const pairs = plan.channels.map((c) => `${c.from.subtask}->${c.to.subtask}`);
          expect(new Set(pairs).size).toBe(ps * pt);
          expect(plan.channels.map((c) => c.id)).toEqual(pairs.map((_, i) => i));
          for (const c of plan.channels) {
            expect(c.fromWorker).toBe(placement === 'single' ? 0 : c.from.subtask);
            expect(c.toWorker).toBe(placement === 'single' ? 0 : c.to.subtask);
          }
          expect(plan.workers).toBe(placement === 'single' ? 1 : Math.max(ps, pt));
        },
      ),
    );
  });
});
