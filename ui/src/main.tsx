/**
 * The eddy dashboard: the job list and the selected job (`#/jobs/<id>`). Bundled by
 * scripts/build-ui.mjs into dist/ui/, served by the job's REST server at `/`.
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, listJobs, setTokenAsker } from './api.js';
import { JobList } from './components/JobList.js';
import { JobView } from './components/JobView.js';
import { TokenPrompt } from './components/TokenPrompt.js';
import type { JobSummary } from './types.js';

const JOBS_POLL_MS = 2000;

const routeOf = (hash: string) => {
  const m = /^#\/jobs\/(.+)$/.exec(hash);
  return m ? decodeURIComponent(m[1]!) : undefined;
};

/** The job to show when none is chosen: a running job of this server, else the first. */
const defaultJob = (jobs: readonly JobSummary[]) => {
  const here = (j: JobSummary) => {
    try {
      return j.url === undefined || new URL(j.url).origin === location.origin;
    } catch {
      return false;
    }
  };
  return (
    jobs.find((j) => here(j) && j.status === 'running') ??
    jobs.find(here) ??
    jobs.find((j) => j.status === 'running') ??
    jobs[0]
  )?.id;
};

const App = () => {
  const [route, setRoute] = useState(routeOf(location.hash));
  const [jobs, setJobs] = useState<JobSummary[] | undefined>();
  const [jobsError, setJobsError] = useState<string | undefined>();
  const [asking, setAsking] = useState<{ wrong: boolean; resolve: (t: string) => void }>();

  useEffect(() => {
    setTokenAsker((wrong) => new Promise((resolve) => setAsking({ wrong, resolve })));
    const onHash = () => setRoute(routeOf(location.hash));
    addEventListener('hashchange', onHash);
    let live = true;
    const poll = () =>
      listJobs()
        .then((j) => {
          if (!live) return;
          setJobs(j);
          setJobsError(undefined);
        })
        .catch((e: unknown) => live && setJobsError(e instanceof ApiError ? e.message : String(e)));
    poll();
    const t = setInterval(poll, JOBS_POLL_MS);
    return () => {
      live = false;
      clearInterval(t);
      removeEventListener('hashchange', onHash);
    };
  }, []);

  const shown = route ?? (jobs ? defaultJob(jobs) : undefined);
  return (
    <div class="app">
      <header class="topbar">
        <a class="brand" href="#/">
          <span class="logo">◠</span> eddy
        </a>
        <span class="muted">stream processing dashboard</span>
      </header>
      <div class="body">
        <JobList jobs={jobs} selected={shown} error={jobsError} />
        {shown ? (
          <JobView key={shown} id={shown} />
        ) : (
          <main class="content">
            <p class="empty">{jobs ? 'No job to show.' : 'Loading…'}</p>
          </main>
        )}
      </div>
      {asking && (
        <TokenPrompt
          wrong={asking.wrong}
          onToken={(t) => {
            asking.resolve(t);
            setAsking(undefined);
          }}
        />
      )}
    </div>
  );
};

render(<App />, document.getElementById('app')!);
