/**
 * The jobs of this machine. Each job serves its own dashboard: a job of this server opens in
 * place, another one at its own URL.
 */
import { since } from '../format.js';
import type { JobSummary } from '../types.js';

const hrefOf = (j: JobSummary) => {
  const here = j.url === undefined || sameOrigin(j.url);
  return here
    ? `#/jobs/${encodeURIComponent(j.id)}`
    : `${j.url.replace(/\/$/, '')}/#/jobs/${encodeURIComponent(j.id)}`;
};

const sameOrigin = (url: string) => {
  try {
    return new URL(url, location.href).origin === location.origin;
  } catch {
    return true;
  }
};

export const JobList = ({
  jobs,
  selected,
  error,
}: {
  jobs: readonly JobSummary[] | undefined;
  selected: string | undefined;
  error: string | undefined;
}) => (
  <nav class="sidebar" aria-label="jobs">
    <h2>Jobs</h2>
    {error && <div class="banner error small">{error}</div>}
    {jobs === undefined && !error && <p class="empty">Loading…</p>}
    {jobs?.length === 0 && (
      <p class="empty">
        No jobs. Start one with <code>eddy run</code>.
      </p>
    )}
    <ul data-testid="job-list">
      {jobs?.map((j) => (
        <li key={j.id}>
          <a
            href={hrefOf(j)}
            class={j.id === selected ? 'active' : ''}
            data-testid="job-link"
            data-job={j.id}
          >
            <span class="job-name">{j.name}</span>
            <span class="job-meta">
              <span class={`dot status-${j.status}`} /> {j.status}
              {j.parallelism !== undefined ? ` · p=${j.parallelism}` : ''}
              {(j.startedAt ?? j.startTime) ? ` · ${since(j.startedAt ?? j.startTime)}` : ''}
            </span>
            <span class="job-id">{j.id}</span>
          </a>
        </li>
      ))}
    </ul>
  </nav>
);
