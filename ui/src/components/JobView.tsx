/**
 * One job: header with its actions, the graph, live rates, the selected operator's subtasks,
 * the key-group skew and the checkpoint history. Polls the job every second and its
 * checkpoints every two; a poll that fails keeps the last data and says so.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  ApiError,
  getCheckpoints,
  getJob,
  getKeyGroups,
  getRescalePlan,
  stopJob,
  triggerSavepoint,
} from '../api.js';
import { defaultOperator, operatorRate, operatorStateBytes, sourceUids } from '../derive.js';
import { bytes, clock, ms, percent, pressureColour, pressureStroke, since } from '../format.js';
import type { CheckpointHistory, JobDetail, RescaleReport } from '../types.js';
import { Checkpoints } from './Checkpoints.js';
import { Graph } from './Graph.js';
import { KeyGroupChart, type SkewData } from './KeyGroupChart.js';
import { addSample, RateChart, type RateHistory } from './RateChart.js';
import { RescalePanel } from './RescalePanel.js';
import { SubtaskTable } from './SubtaskTable.js';

const JOB_POLL_MS = 1000;
const CHECKPOINT_POLL_MS = 2000;
/** The skew chart is re-read at most this often (it plans over every key group). */
const SKEW_MIN_MS = 5000;

/**
 * Bytes per key group of operator `uid` from `GET /key-groups`; from a server without it, a
 * restore plan at maxParallelism, which puts every key group alone in a new subtask.
 */
const readSkew = async (
  id: string,
  uid: string,
  maxParallelism: number,
): Promise<Omit<SkewData, 'subtasks'> | undefined> => {
  try {
    const kg = await getKeyGroups(id);
    const op = kg.operators.find((o) => o.uid === uid);
    if (!op) return undefined;
    return { perKeyGroup: op.bytes, source: `checkpoint ${kg.checkpointId}` };
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
  }
  const plan = await getRescalePlan(id, maxParallelism);
  const op = plan.operators.find((o) => o.uid === uid)?.plan;
  if (!op) return undefined;
  const perKeyGroup = new Array<number>(maxParallelism).fill(0);
  for (const s of op.subtasks) perKeyGroup[s.keyGroupRange[0]] = s.bytes;
  return { perKeyGroup, source: `checkpoint ${plan.checkpointId ?? ''}` };
};

/** What the node colours mean. */
const Legend = () => (
  <span class="legend">
    {[0, 0.5, 1].map((f) => (
      <span key={f}>
        <i style={{ background: pressureColour(f), borderColor: pressureStroke(f) }} />
        {percent(f)}
      </span>
    ))}
  </span>
);

const message = (e: unknown) =>
  e instanceof ApiError ? e.message : e instanceof Error ? e.message : String(e);

export const JobView = ({ id }: { id: string }) => {
  const [job, setJob] = useState<JobDetail | undefined>();
  const [jobError, setJobError] = useState<string | undefined>();
  const [checkpoints, setCheckpoints] = useState<CheckpointHistory | undefined>();
  const [selected, setSelected] = useState<string | undefined>();
  const [skew, setSkew] = useState<SkewData | undefined>();
  const [rescaling, setRescaling] = useState(false);
  const [notice, setNotice] = useState<{ kind: 'ok' | 'error'; text: string } | undefined>();
  const [confirmStop, setConfirmStop] = useState(false);
  const [acting, setActing] = useState(false);
  const [version, setVersion] = useState(0);
  /** Polls at once (after an action changed the job). */
  const pollNow = useRef<() => void>(() => {});
  const history = useRef<RateHistory>({ t: [], series: new Map(), names: new Map() });
  const skewRead = useRef<{ at: number; checkpoint: number | undefined; uid: string }>({
    at: 0,
    checkpoint: undefined,
    uid: '',
  });

  useEffect(() => {
    history.current = { t: [], series: new Map(), names: new Map() };
    setJob(undefined);
    setCheckpoints(undefined);
    setSkew(undefined);
    setSelected(undefined);
    let live = true;
    const pollJob = async () => {
      try {
        const j = await getJob(id);
        if (!live) return;
        setJob(j);
        setJobError(undefined);
        const sources = sourceUids(j.vertices, j.edges);
        addSample(
          history.current,
          Date.now() / 1000,
          new Map(j.vertices.map((v) => [v.uid, operatorRate(v, sources.has(v.uid))])),
          new Map(j.vertices.map((v) => [v.uid, v.name])),
        );
        setVersion((n) => n + 1);
      } catch (e) {
        if (live) setJobError(message(e));
      }
    };
    const pollCheckpoints = async () => {
      try {
        const c = await getCheckpoints(id);
        if (live) setCheckpoints(c);
      } catch {
        // The job poll reports an unreachable server; the history keeps its last state.
      }
    };
    pollNow.current = () => {
      pollJob();
      pollCheckpoints();
    };
    pollJob();
    pollCheckpoints();
    const a = setInterval(pollJob, JOB_POLL_MS);
    const b = setInterval(pollCheckpoints, CHECKPOINT_POLL_MS);
    return () => {
      live = false;
      clearInterval(a);
      clearInterval(b);
    };
  }, [id]);

  const operator =
    job?.vertices.find((v) => v.uid === selected) ??
    job?.vertices.find((v) => v.uid === defaultOperator(job.vertices));

  // The skew is measured on the latest completed snapshot: re-read when a new one completes
  // (at most every SKEW_MIN_MS) or another operator is selected.
  const latestCompleted = checkpoints?.history.find((c) => c.status === 'completed')?.id;
  const owners = operator?.subtasks.map((s) => ({
    index: s.index,
    range: s.keyGroupRange ?? ([0, -1] as const),
    bytes: s.stateBytes ?? 0,
  }));
  useEffect(() => {
    if (!job || !operator || !owners) return;
    const fallback: SkewData = {
      subtasks: owners,
      note:
        operator.keyed === false
          ? 'Not keyed: operator state per subtask, from the latest checkpoint'
          : 'Per subtask (no per-key-group bytes from the server)',
    };
    const last = skewRead.current;
    const due = last.checkpoint !== latestCompleted && Date.now() - last.at >= SKEW_MIN_MS;
    if (latestCompleted === undefined || operator.keyed === false) {
      setSkew(operatorStateBytes(operator) > 0 ? fallback : undefined);
      return;
    }
    if (!due && last.uid === operator.uid && skew?.perKeyGroup) {
      // Keep the bars, recolour them for today's owners (after a rescale).
      setSkew({ ...skew, subtasks: owners });
      return;
    }
    skewRead.current = { at: Date.now(), checkpoint: latestCompleted, uid: operator.uid };
    readSkew(id, operator.uid, operator.maxParallelism)
      .then((s) => setSkew(s ? { ...s, subtasks: owners } : fallback))
      .catch(() => setSkew(fallback));
  }, [latestCompleted, operator?.uid, operator?.parallelism, job?.id]);

  useEffect(() => {
    document.title = job ? `${job.name} · eddy` : 'eddy dashboard';
  }, [job?.name]);

  const act = async (what: () => Promise<string>) => {
    setActing(true);
    setNotice(undefined);
    try {
      setNotice({ kind: 'ok', text: await what() });
      pollNow.current();
    } catch (e) {
      setNotice({ kind: 'error', text: message(e) });
    } finally {
      setActing(false);
    }
  };

  const savepoint = () =>
    act(async () => `Savepoint written to ${(await triggerSavepoint(id)).path}`);
  const stop = (withSavepoint: boolean) => {
    setConfirmStop(false);
    return act(async () => {
      const r = await stopJob(id, withSavepoint);
      const path = r?.path ?? r?.savepoint;
      return path ? `Job stopped; savepoint at ${path}` : 'Job stopped.';
    });
  };

  const onRescaled = (r: RescaleReport) => {
    pollNow.current();
    setNotice({
      kind: 'ok',
      text: r.unchanged
        ? 'The job already runs at that parallelism.'
        : `Rescaled ${r.fromParallelism} → ${r.toParallelism} with a pause of ${Math.round(r.pauseMs ?? 0)} ms.`,
    });
  };

  if (!job)
    return (
      <main class="content">
        {jobError ? (
          <div class="banner error">
            Cannot load job {id}: {jobError}
          </div>
        ) : (
          <p class="empty">Loading job {id}…</p>
        )}
      </main>
    );

  const running = job.status === 'running' && !job.rescaling;
  return (
    <main class="content" data-testid="job-view" data-job={job.id}>
      <header class="job-head">
        <div class="job-title">
          <h1>{job.name}</h1>
          <span
            class={`tag status-${job.rescaling ? 'rescaling' : job.status}`}
            data-testid="job-status"
          >
            {job.rescaling ? 'rescaling' : job.status}
          </span>
          <span class="muted" data-testid="job-parallelism">
            parallelism <b>{job.parallelism}</b>
          </span>
          <span class="muted">up {since(job.startedAt ?? job.startTime)}</span>
          <span class="muted">
            state{' '}
            {bytes(
              job.vertices.some((v) => v.subtasks.some((t) => t.stateBytes !== null))
                ? job.vertices.reduce((a, v) => a + operatorStateBytes(v), 0)
                : undefined,
            )}
          </span>
          {job.restarts ? <span class="muted">restarts {job.restarts}</span> : null}
          {job.lastRescale && (
            <span
              class="muted"
              data-testid="last-rescale"
              title={`last rescale at ${clock(job.lastRescale.at)}: ${bytes(job.lastRescale.bytesRead)} read, ${job.lastRescale.keyGroups} key groups`}
            >
              rescaled {job.lastRescale.fromParallelism}→{job.lastRescale.toParallelism}, pause{' '}
              <b>{ms(job.lastRescale.pauseMs)}</b>
            </span>
          )}
        </div>
        <div class="actions">
          <button
            type="button"
            disabled={!running || acting}
            onClick={savepoint}
            data-testid="savepoint-button"
          >
            Savepoint
          </button>
          <button
            type="button"
            class="primary"
            disabled={!running || acting}
            onClick={() => setRescaling(true)}
            data-testid="rescale-button"
          >
            Rescale…
          </button>
          <button
            type="button"
            class="danger"
            disabled={!running || acting}
            onClick={() => setConfirmStop(true)}
            data-testid="stop-button"
          >
            Stop
          </button>
        </div>
      </header>
      {jobError && (
        <div class="banner error" data-testid="job-error">
          Lost contact with the job: {jobError}. Showing its last known state.
        </div>
      )}
      {notice && (
        <div class={`banner closable ${notice.kind}`} data-testid="notice">
          <span data-testid="notice-text">{notice.text}</span>
          <button
            type="button"
            class="icon"
            aria-label="dismiss"
            onClick={() => setNotice(undefined)}
          >
            ×
          </button>
        </div>
      )}
      <div class="cards">
        <section class="card wide graph-card">
          <h2>
            Graph{' '}
            <span class="muted">left to right · colour: backpressure · click an operator</span>
            <Legend />
          </h2>
          <Graph
            vertices={job.vertices}
            edges={job.edges}
            selected={operator?.uid}
            onSelect={setSelected}
          />
        </section>
        <section class="card">
          <h2>
            Records per second <span class="muted">per operator, last 5 minutes</span>
          </h2>
          <RateChart history={history.current} version={version} />
        </section>
        <section class="card">
          <h2>
            State bytes per {operator?.keyed === false ? 'subtask' : 'key group'}{' '}
            <span class="muted">{operator?.name ?? ''}</span>
          </h2>
          <KeyGroupChart skew={skew} />
        </section>
        <section class="card wide">
          <h2>
            Subtasks of {operator?.name ?? '—'}{' '}
            <span class="muted">{operator ? `p=${operator.parallelism}` : ''}</span>
          </h2>
          <SubtaskTable vertex={operator} />
        </section>
        <section class="card wide" data-testid="checkpoints-card">
          <h2>
            Checkpoints{' '}
            {checkpoints?.counts && (
              <span class="muted">
                {checkpoints.counts.completed} completed, {checkpoints.counts.failed} failed
              </span>
            )}
          </h2>
          <Checkpoints history={checkpoints} />
        </section>
      </div>
      {rescaling && (
        <RescalePanel job={job} onClose={() => setRescaling(false)} onRescaled={onRescaled} />
      )}
      {confirmStop && (
        <div class="overlay">
          <section class="dialog small" role="dialog" aria-label="Stop">
            <header class="dialog-head">
              <h2>Stop {job.name}?</h2>
            </header>
            <div class="dialog-body">
              <p>With a savepoint the job can be started again from where it stopped.</p>
            </div>
            <footer class="dialog-foot">
              <button type="button" onClick={() => setConfirmStop(false)}>
                Cancel
              </button>
              <button type="button" class="danger" onClick={() => stop(false)}>
                Stop
              </button>
              <button type="button" class="primary" onClick={() => stop(true)}>
                Stop with savepoint
              </button>
            </footer>
          </section>
        </div>
      )}
    </main>
  );
};
