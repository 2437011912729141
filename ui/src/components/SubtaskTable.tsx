/** The subtasks of one operator: records, rates, backpressure, watermark, key groups, state. */
import {
  count,
  percent,
  pressureColour,
  range,
  rate,
  bytes as size,
  watermark,
} from '../format.js';
import type { Vertex } from '../types.js';

export const SubtaskTable = ({ vertex }: { vertex: Vertex | undefined }) => {
  if (!vertex) return <p class="empty">Select an operator in the graph.</p>;
  if (vertex.subtasks.length === 0) return <p class="empty">No subtasks are running.</p>;
  return (
    <div class="table-scroll">
      <table class="grid" data-testid="subtask-table">
        <thead>
          <tr>
            <th>#</th>
            <th>worker</th>
            <th class="num">records in</th>
            <th class="num">records out</th>
            <th class="num">in/s</th>
            <th class="num">out/s</th>
            <th>backpressure</th>
            <th>watermark</th>
            <th>key groups</th>
            <th class="num">state</th>
          </tr>
        </thead>
        <tbody>
          {vertex.subtasks.map((s) => (
            <tr key={s.index} data-testid="subtask-row">
              <td>{s.index}</td>
              <td>{s.worker ?? '—'}</td>
              <td class="num">{count(s.recordsIn)}</td>
              <td class="num">{count(s.recordsOut)}</td>
              <td class="num">{rate(s.recordsInPerSecond)}</td>
              <td class="num">{rate(s.recordsOutPerSecond)}</td>
              <td>
                <span class="meter">
                  <span
                    style={{
                      width: `${Math.round(Math.min(1, Math.max(0, s.backpressure || 0)) * 100)}%`,
                      background: pressureColour(s.backpressure),
                    }}
                  />
                </span>
                {percent(s.backpressure)}
              </td>
              <td>{watermark(s.watermark)}</td>
              <td>{range(s.keyGroupRange)}</td>
              <td class="num">{size(s.stateBytes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
};
