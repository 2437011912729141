/**
 * Choose a new parallelism, see what the restore would read (per keyed operator and new subtask:
 * its key groups and the bytes it reads from each old subtask, planned on the latest completed
 * checkpoint), then rescale and see the measured pause.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, getRescalePlan, rescale } from '../api.js';
import { oldSubtaskOf } from '../derive.js';
import { bytes, count, ms, range } from '../format.js';
import type { JobDetail, PlannedOperator, RescalePlan, RescaleReport } from '../types.js';

const isKeyed = (o: PlannedOperator) =>
  (o.keyedStateBytes ?? 0) > 0 || (o.plan?.subtasks.some((s) => s.reads.length > 0) ?? false);

export const RescalePanel = ({
  job,
  onClose,
  onRescaled,
}: {
  job: JobDetail;
  onClose: () => void;
  onRescaled: (r: RescaleReport) => void;
}) => {
  const maxP = Math.min(...job.vertices.map((v) => v.maxParallelism), job.maxParallelism ?? 1e9);
  const [target, setTarget] = useState(Math.min(maxP, job.parallelism + 1));
  const [plan, setPlan] = useState<RescalePlan | undefined>();
  const [planError, setPlanError] = useState<string | undefined>();
  const [loading, setLoading] = useState(false);
  const [refresh, setRefresh] = useState(0);
  const [busy, setBusy] = useState(false);
  const [report, setReport] = useState<RescaleReport | undefined>();
  const [error, setError] = useState<string | undefined>();
  const valid = Number.isInteger(target) && target >= 1 && target <= maxP;

  useEffect(() => {
    if (!valid) return;
    let live = true;
    setLoading(true);
    setPlanError(undefined);
    const t = setTimeout(() => {
      getRescalePlan(job.id, target)
        .then((p) => live && setPlan(p))
        .catch((e: unknown) => {
          if (!live) return;
          setPlan(undefined);
          setPlanError(message(e));
        })
        .finally(() => live && setLoading(false));
    }, 150);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [target, refresh, job.id, valid]);

  // Escape closes the panel, unless a rescale is under way.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && !busy && onClose();
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [busy, onClose]);

  const go = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const r = await rescale(job.id, target);
      setReport(r);
      onRescaled(r);
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  };

  const keyed = plan?.operators.filter(isKeyed) ?? [];
  const others = plan?.operators.filter((o) => !isKeyed(o)) ?? [];
  const shownFor = plan?.operators[0]?.plan?.parallelism;

  return (
    <div class="overlay">
      <section class="dialog" role="dialog" aria-label="Rescale" data-testid="rescale-panel">
        <header class="dialog-head">
          <h2>Rescale {job.name}</h2>
          <button type="button" class="icon" onClick={onClose} disabled={busy} aria-label="close">
            ×
          </button>
        </header>
        <div class="dialog-body">
          <div class="row">
            <label class="field">
              New parallelism
              <input
                type="number"
                min={1}
                max={maxP}
                value={target}
                data-testid="rescale-input"
                onInput={(e) => setTarget(Number((e.target as HTMLInputElement).value))}
              />
            </label>
            <span class="muted">
              now {job.parallelism}, at most {maxP} (max parallelism)
            </span>
            <span class="spacer" />
            <button type="button" onClick={() => setRefresh((n) => n + 1)} disabled={!valid}>
              Refresh plan
            </button>
          </div>
          {!valid && <div class="banner warn">Choose a parallelism from 1 to {maxP}.</div>}
          {planError && (
            <div class="banner warn" data-testid="plan-error">
              No plan to show: {planError}. Rescaling still works: it takes a savepoint and restores
              from it.
            </div>
          )}
          {valid && !plan && !planError && <p class="empty">Planning…</p>}
          {plan && (
            <div class={loading ? 'stale' : ''}>
              <p class="muted" data-testid="plan-source">
                Planned on {plan.savepoint ? 'savepoint' : 'checkpoint'} {plan.checkpointId ?? ''}:{' '}
                <code data-testid="plan-checkpoint" data-path={plan.path ?? ''}>
                  {plan.path ?? 'the latest completed checkpoint'}
                </code>
              </p>
              {keyed.length === 0 && <p class="empty">No operator has keyed state yet.</p>}
              {keyed.map((o) => (
                <OperatorPlanView key={o.uid} op={o} job={job} />
              ))}
              {others.length > 0 && (
                <p class="muted">
                  No keyed state (operator state is redistributed):{' '}
                  {others.map((o) => o.name).join(', ')}.
                </p>
              )}
            </div>
          )}
          {error && (
            <div class="banner error" data-testid="rescale-error">
              Rescale failed: {error}
            </div>
          )}
          {report && <ReportView report={report} />}
        </div>
        <footer class="dialog-foot">
          <button type="button" onClick={onClose} disabled={busy} data-testid="rescale-close">
            {report ? 'Close' : 'Cancel'}
          </button>
          <button
            type="button"
            class="primary"
            data-testid="rescale-confirm"
            disabled={
              busy ||
              !valid ||
              // A plan for this parallelism is shown, or none can be made (no checkpoint yet).
              (plan ? shownFor !== target || loading : !planError) ||
              target === job.parallelism ||
              report?.toParallelism === target
            }
            onClick={go}
          >
            {busy ? 'Rescaling…' : `Rescale to ${target}`}
          </button>
        </footer>
      </section>
    </div>
  );
};

const OperatorPlanView = ({ op, job }: { op: PlannedOperator; job: JobDetail }) => {
  const plan = op.plan;
  if (!plan) return null;
  const old = job.vertices.find((v) => v.uid === op.uid);
  return (
    <div class="plan" data-testid="plan-operator" data-uid={op.uid}>
      <h3>
        {op.name}{' '}
        <span class="muted">
          p={op.parallelism} → {plan.parallelism}
        </span>
      </h3>
      <div class="stats">
        <span>
          <b>{bytes(plan.bytesRead)}</b> read
        </span>
        <span>
          <b>{count(plan.movedKeyGroups)}</b> key groups move ({bytes(plan.movedBytes)})
        </span>
        <span>
          read amplification <b>{plan.readAmplification.toFixed(2)}</b>
        </span>
      </div>
      <div class="table-scroll plan-table">
        <table class="grid">
          <thead>
            <tr>
              <th>new subtask</th>
              <th>key groups</th>
              <th>reads (from old subtask)</th>
              <th class="num">bytes</th>
            </tr>
          </thead>
          <tbody>
            {plan.subtasks.map((s) => (
              <tr
                key={s.index}
                data-testid="plan-row"
                data-subtask={s.index}
                data-range={`${s.keyGroupRange[0]}-${s.keyGroupRange[1]}`}
                data-bytes={s.bytes}
                data-reads={JSON.stringify(
                  s.reads.map((r) => [r.file, r.offset, r.length, r.keyGroups[0], r.keyGroups[1]]),
                )}
              >
                <td>{s.index}</td>
                <td>{range(s.keyGroupRange)}</td>
                <td>
                  {s.reads.length === 0 ? (
                    <span class="muted">nothing</span>
                  ) : (
                    s.reads.map((r) => (
                      <span
                        class="chip"
                        key={`${r.file}@${r.offset}`}
                        title={`${r.file} bytes ${r.offset}–${r.offset + r.length}, key groups ${range(r.keyGroups)}`}
                      >
                        #{oldSubtaskOf(r, old) ?? '?'}: {bytes(r.length)}{' '}
                        <span class="muted">kg {range(r.keyGroups)}</span>
                      </span>
                    ))
                  )}
                </td>
                <td class="num">{bytes(s.bytes)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
};

const ReportView = ({ report }: { report: RescaleReport }) =>
  report.unchanged ? (
    <div class="banner ok" data-testid="rescale-result">
      <span>Nothing to do: the job already runs at parallelism {report.parallelism}.</span>
    </div>
  ) : (
    <div class="banner ok" data-testid="rescale-result" data-pause={report.pauseMs}>
      <div>
        <div>
          Rescaled {report.fromParallelism} → {report.toParallelism}: pause{' '}
          <b data-testid="rescale-pause">{ms(report.pauseMs)}</b> (new threads started beforehand in{' '}
          {ms(report.prepareMs)} while the job ran), restored {count(report.keyGroups)} key groups,{' '}
          {bytes(report.bytesRead)} read in {ms(report.restoreMs)}.
        </div>
        {report.savepoint && (
          <div class="muted small">
            via <code>{report.savepoint}</code>
          </div>
        )}
      </div>
    </div>
  );

const message = (e: unknown) =>
  e instanceof ApiError ? `${e.message} (${e.code})` : e instanceof Error ? e.message : String(e);
