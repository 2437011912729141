/**
 * The job graph laid out left to right by dagre: one box per operator with its parallelism and
 * rate, filled by its backpressure. Clicking a box selects the operator the tables show.
 */
import dagre from '@dagrejs/dagre';
import { useMemo } from 'preact/hooks';
import { operatorPressure, operatorRate, sourceUids } from '../derive.js';
import { percent, pressureColour, pressureStroke, rate } from '../format.js';
import type { Edge, Vertex } from '../types.js';

const NODE_W = 168;
const NODE_H = 64;

interface Layout {
  width: number;
  height: number;
  nodes: Map<string, { x: number; y: number }>;
  edges: Array<{ edge: Edge; points: Array<{ x: number; y: number }> }>;
}

const layOut = (vertices: readonly Vertex[], edges: readonly Edge[]): Layout => {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 56, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const v of vertices) g.setNode(v.uid, { width: NODE_W, height: NODE_H });
  edges.forEach((e, i) => {
    if (g.hasNode(e.from) && g.hasNode(e.to)) g.setEdge(e.from, e.to, {}, String(i));
  });
  dagre.layout(g);
  const nodes = new Map<string, { x: number; y: number }>();
  for (const v of vertices) {
    const n = g.node(v.uid);
    nodes.set(v.uid, { x: n.x, y: n.y });
  }
  const laid = edges.flatMap((edge, i) => {
    const e = g.edge({ v: edge.from, w: edge.to, name: String(i) });
    return e?.points ? [{ edge, points: e.points }] : [];
  });
  const graph = g.graph();
  return { width: graph.width ?? 0, height: graph.height ?? 0, nodes, edges: laid };
};

const path = (pts: Array<{ x: number; y: number }>) =>
  pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');

export const Graph = ({
  vertices,
  edges,
  selected,
  onSelect,
}: {
  vertices: readonly Vertex[];
  edges: readonly Edge[];
  selected: string | undefined;
  onSelect: (uid: string) => void;
}) => {
  // Re-laid out only when the shape changes, not on every poll.
  const shape = JSON.stringify([vertices.map((v) => v.uid), edges]);
  const layout = useMemo(() => layOut(vertices, edges), [shape]);
  const sources = sourceUids(vertices, edges);
  if (vertices.length === 0) return <p class="empty">The job has no operators yet.</p>;
  return (
    <div class="graph-scroll">
      <svg
        class="graph"
        viewBox={`0 0 ${layout.width} ${layout.height}`}
        width={layout.width}
        height={layout.height}
        role="img"
        aria-label="job graph"
      >
        <defs>
          <marker
            id="arrow"
            viewBox="0 0 10 10"
            refX="9"
            refY="5"
            markerWidth="7"
            markerHeight="7"
            orient="auto-start-reverse"
          >
            <path d="M 0 0 L 10 5 L 0 10 z" fill="#8792a2" />
          </marker>
        </defs>
        {layout.edges.map(({ edge, points }) => {
          const mid = points[Math.floor(points.length / 2)]!;
          return (
            <g key={`${edge.from}->${edge.to}`}>
              <path d={path(points)} class="edge" marker-end="url(#arrow)" />
              <text x={mid.x} y={mid.y - 6} class="edge-label" text-anchor="middle">
                {edge.partitioning}
              </text>
            </g>
          );
        })}
        {vertices.map((v) => {
          const at = layout.nodes.get(v.uid);
          if (!at) return null;
          const bp = operatorPressure(v);
          const r = operatorRate(v, sources.has(v.uid));
          const x = at.x - NODE_W / 2;
          const y = at.y - NODE_H / 2;
          return (
            // biome-ignore lint/a11y/useSemanticElements: an SVG box cannot be a <button>
            <g
              key={v.uid}
              class={`node${selected === v.uid ? ' selected' : ''}`}
              data-testid="graph-node"
              data-uid={v.uid}
              data-parallelism={v.parallelism}
              data-rate={r}
              role="button"
              tabIndex={0}
              onClick={() => onSelect(v.uid)}
              onKeyDown={(e) => e.key === 'Enter' && onSelect(v.uid)}
            >
              <title>{`${v.name} (${v.uid}): backpressure ${percent(bp)}`}</title>
              <rect
                x={x}
                y={y}
                width={NODE_W}
                height={NODE_H}
                rx={8}
                fill={pressureColour(bp)}
                stroke={selected === v.uid ? '#1f4fd1' : pressureStroke(bp)}
                stroke-width={selected === v.uid ? 2.5 : 1.2}
              />
              <text x={x + 12} y={y + 22} class="node-name">
                {v.name.length > 18 ? `${v.name.slice(0, 17)}…` : v.name}
              </text>
              <text x={x + NODE_W - 12} y={y + 22} class="node-par" text-anchor="end">
                p={v.parallelism}
              </text>
              <text x={x + 12} y={y + 46} class="node-meta">
                {rate(r)}
              </text>
              <text x={x + NODE_W - 12} y={y + 46} class="node-meta" text-anchor="end">
                bp {percent(bp)}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
};
