/** The checkpoint history, newest first, and the latest failure with its cause. */
import { bytes, clock, ms, tailOf } from '../format.js';
import type { CheckpointHistory } from '../types.js';

const SHOWN = 50;

export const Checkpoints = ({ history }: { history: CheckpointHistory | undefined }) => {
  if (!history) return <p class="empty">Loading…</p>;
  const failure = history.latestFailure;
  return (
    <div>
      {failure && (
        <div class="banner warn" data-testid="checkpoint-failure">
          <span>
            Latest failure: {failure.kind} {failure.id} at {clock(failure.triggerTime)}:{' '}
            {failure.cause ?? 'no cause given'}
          </span>
        </div>
      )}
      {history.history.length === 0 ? (
        <p class="empty">
          No checkpoints yet. Start the job with <code>--checkpoint-interval &lt;ms&gt;</code> or
          take a savepoint.
        </p>
      ) : (
        <div class="table-scroll tall">
          <table class="grid" data-testid="checkpoint-table">
            <thead>
              <tr>
                <th>id</th>
                <th>kind</th>
                <th>status</th>
                <th>triggered</th>
                <th class="num">duration</th>
                <th class="num">sync</th>
                <th class="num">async</th>
                <th class="num">size</th>
                <th>path</th>
              </tr>
            </thead>
            <tbody>
              {history.history.slice(0, SHOWN).map((c) => (
                <tr key={`${c.kind}-${c.id}`} data-testid="checkpoint-row">
                  <td>{c.id}</td>
                  <td>
                    <span class={`tag ${c.kind}`}>{c.kind}</span>
                  </td>
                  <td>
                    <span class={`tag status-${c.status}`}>{c.status}</span>
                  </td>
                  <td>{clock(c.triggerTime)}</td>
                  <td class="num">{ms(c.durationMs ?? c.duration)}</td>
                  <td class="num">{ms(c.syncMs)}</td>
                  <td class="num">{ms(c.asyncMs)}</td>
                  <td class="num">{bytes(c.bytes)}</td>
                  <td class="path" title={c.path ?? c.cause}>
                    {c.path ? tailOf(c.path) : (c.cause ?? '—')}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
};
