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

  describe('placement (task slots)', () => {
    const job = (ps: number, pt: number): JobGraph => ({
      name: 'j',
      // source -> map (forward, chained) -> hash -> sum -> sink (forward, chained)
      nodes: [node(0, ps, 'source'), node(1, ps), node(2, pt), node(3, pt)],
      edges: [edge(0, 1), edge(1, 2, 'hash'), edge(2, 3)],
    });

    it('puts subtask i of every chain on worker i mod W, W = min(workers, max parallelism)', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 40 }),
          fc.integer({ min: 1, max: 40 }),
          fc.integer({ min: 1, max: 8 }),
          (ps, pt, workers) => {
            const plan = planExecution(job(ps, pt), { workers });
            const w = Math.min(workers, Math.max(ps, pt));
            expect(plan.workers).toBe(w);
            for (const c of plan.chains) {
              for (let i = 0; i < c.parallelism; i++) {
                expect(plan.workerOf({ chain: c.index, subtask: i })).toBe(i % w);
                expect(plan.placement.workerOf[c.index]![i]).toBe(i % w);
              }
            }
            // Every worker hosts at least one subtask.
            const used = new Set(plan.placement.workerOf.flat());
            expect(used.size).toBe(w);
            for (const c of plan.channels) {
              expect(c.fromWorker).toBe(c.from.subtask % w);
              expect(c.toWorker).toBe(c.to.subtask % w);
            }
          },
        ),
      );
    });

    it('keeps chained and forward edges local: subtask i of all chains share a worker', () => {
      const g: JobGraph = {
        name: 'j',
        nodes: [node(0, 24, 'source'), node(1, 24), node(2, 24)],
        edges: [edge(0, 1, 'rebalance'), edge(1, 2, 'forward'), edge(0, 2, 'forward')],
      };
      const plan = planExecution(g, { workers: 2 });
      for (const c of plan.channels) {
        if (g.edges[c.edge]!.partitioning.kind === 'forward') {
          expect(c.fromWorker).toBe(c.toWorker);
        }
      }
    });

    it('a worker plans with the table the master sent (plain data) and refuses one that does not fit', () => {
      const master = planExecution(job(24, 7), { workers: 2 });
      const table = structuredClone(master.placement);
      const worker = planExecution(job(24, 7), { placement: table });
      expect(worker.workers).toBe(2);
      expect(worker.channels).toEqual(master.channels);
      expect(() => planExecution(job(24, 8), { placement: table })).toThrow(
        /placement does not fit/,
      );
    });

    it('per-subtask is one worker per subtask index; single is one worker', () => {
      expect(planExecution(job(5, 3)).workers).toBe(5);
      expect(planExecution(job(5, 3), 'single').workers).toBe(1);
      expect(planExecution(job(5, 3), { workers: 64 }).workers).toBe(5);
    });
  });
});
