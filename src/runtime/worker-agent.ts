/**
 * The worker side of the job protocol, the same in a worker thread and in the calling
 * thread: restores state, opens and runs the subtasks, writes their checkpoint snapshots
 * (asynchronously, while processing goes on) and acknowledges them to the master.
 */
import { dirname, resolve } from 'node:path';
import {
  type ChainView,
  chainsInRange,
  deferKeyGroups,
  isIncremental,
  operatorStateFileName,
  readKeyGroupsLazily,
  readOperatorStateElements,
  redistributeOperatorState,
  writeOperatorStateFile,
} from '../checkpoint/index.js';
import type { AnyKeyedStateHandle, SubtaskStateHandle } from '../checkpoint/types.js';
import { EddyError, serializeError } from '../core/errors.js';
import { checkpointId as toCheckpointId } from '../core/ids.js';
import {
  computeKeyGroupRange,
  intersectKeyGroupRanges,
  type KeyGroupRange,
} from '../keygroups/index.js';
import type { KeyedStateBackendFactory } from '../state/backend.js';
import { diskBackendFactory } from '../state/disk/index.js';
import type { LazyKeyGroup } from '../state/types.js';
import { faultPoint, InjectedFault } from './faults.js';
import type { JobGraph, JobNode } from './graph.js';
import type { ExecutionPlan } from './plan.js';
import type {
  FromWorker,
  OperatorAck,
  RestoreSource,
  RestoreStats,
  StateBackendConfig,
  ToWorker,
} from './protocol.js';
import type { RestoredOperatorState, SubtaskRunner, TaskSnapshot } from './subtask.js';
import type { PeerLink } from './transport/exchange.js';
import { taskKey, type WorkerOptions, WorkerRuntime } from './worker-runtime.js';

export interface AgentConfig {
  readonly workerIndex: number;
  readonly options: WorkerOptions;
  readonly checkpointing: boolean;
  /**
   * Set when keyed state is checkpointed incrementally: the job's checkpoint directory (the
   * parent of its `chk-<id>` directories and of `blocks/`).
   */
  readonly incrementalBase?: string | undefined;
  /** The keyed state backend of this worker's subtasks (default heap). */
  readonly stateBackend?: StateBackendConfig | undefined;
  readonly restore: RestoreSource | undefined;
}

/**
 * The factory a worker builds from its plain config: in the worker itself, because a function
 * cannot cross a thread. Undefined: the subtask's default, the heap backend.
 */
const backendFactory = (
  config: StateBackendConfig | undefined,
): KeyedStateBackendFactory | undefined =>
  config?.kind === 'disk' ? diskBackendFactory(config.dir) : undefined;

interface CheckpointTrigger {
  readonly dir: string;
  readonly savepoint: boolean;
  readonly timestamp: number;
}

interface PendingAck {
  readonly operators: OperatorAck[];
  tasks: number;
  syncMs: number;
  asyncMs: number;
  bytes: number;
  failed: boolean;
}

export class WorkerAgent {
  private runtime: WorkerRuntime | undefined;
  private readonly triggers = new Map<number, CheckpointTrigger>();
  /** Snapshots whose barrier arrived before the master's trigger (which names the dir). */
  private readonly early = new Map<number, TaskSnapshot[]>();
  private readonly acks = new Map<number, PendingAck>();
  private latestTrigger = 0;
  /** Highest checkpoint the master aborted: snapshots of it or older are dropped. */
  private lastAborted = 0;
  private failed = false;
  private closed = false;
  /** Commits run in order, and closing waits for them (the final checkpoint's commit). */
  private commits: Promise<void> = Promise.resolve();

  constructor(
    private readonly graph: JobGraph,
    private readonly plan: ExecutionPlan,
    private readonly config: AgentConfig,
    private readonly post: (m: FromWorker) => void,
  ) {}

  private restoreStats: RestoreStats | undefined;

  /** Restores state and builds the subtasks; peers connect afterwards. */
  async prepare(): Promise<void> {
    const started = performance.now();
    const stats: RestoreTally = { bytesRead: 0, bytesDeferred: 0, keyGroups: 0, operators: [] };
    const restored = this.config.restore
      ? await loadRestoredState(
          this.graph,
          this.plan,
          this.config.workerIndex,
          this.config.restore,
          stats,
          this.config.incrementalBase,
        )
      : new Map();
    if (this.config.restore) this.restoreStats = { ...stats, ms: performance.now() - started };
    this.runtime = new WorkerRuntime(
      this.graph,
      this.plan,
      this.config.workerIndex,
      this.config.options,
      {
        checkpointing: this.config.checkpointing,
        incremental: this.config.incrementalBase !== undefined,
        keyedStateBackend: backendFactory(this.config.stateBackend),
        restored,
        onSnapshot: (s) => this.onSnapshot(s),
        onFirstRecord: () => this.post({ type: 'firstRecord', at: Date.now() }),
        onDecline: (checkpointId, reason) => this.post({ type: 'declined', checkpointId, reason }),
        sendSourceEvent: (uid, subtask, event) =>
          this.post({ type: 'sourceEvent', uid, subtask, event }),
      },
    );
  }

  connectPeer(worker: number, link: PeerLink): void {
    this.rt.connectPeer(worker, link);
  }

  handle(m: ToWorker): void {
    switch (m.type) {
      case 'connect':
        // Ports are attached by the thread entry; here only the opening is left.
        this.rt
          .open()
          .then(() => this.post({ type: 'ready', restore: this.restoreStats }))
          .catch((e) => this.fail(e));
        break;
      case 'start':
        void this.execute();
        break;
      case 'sampleMetrics':
        if (!this.closed)
          this.post({ type: 'metrics', round: m.round, reports: this.rt.metrics() });
        break;
      case 'stop':
        this.rt.requestStop(m.drain);
        break;
      case 'sourceEvent':
        this.rt.deliverReaderEvent(m.uid, m.subtask, m.event);
        break;
      case 'checkpoint':
        this.trigger(m.checkpointId, {
          dir: m.dir,
          savepoint: m.savepoint,
          timestamp: m.timestamp,
        });
        break;
      case 'checkpointComplete':
        this.commits = this.commits
          .then(() => {
            faultPoint('commit-notify', `checkpoint ${m.checkpointId}`, this.config.workerIndex);
            return this.rt.notifyCheckpointComplete(m.checkpointId);
          })
          .catch((e) => this.fail(e));
        break;
      case 'checkpointAborted':
        this.abort(m.checkpointId);
        break;
      case 'close':
        this.close();
        break;
      case 'cancel':
        if (this.closed) {
          this.post({ type: 'cancelled' });
          break;
        }
        this.failed = true;
        this.closed = true;
        this.rt.cancel();
        this.rt
          .close(true)
          .catch(() => {})
          .finally(() => this.post({ type: 'cancelled' }));
        break;
    }
  }

  private get rt(): WorkerRuntime {
    if (!this.runtime) throw new EddyError('EDDY_INTERNAL', 'worker used before prepare()');
    return this.runtime;
  }

  private async execute(): Promise<void> {
    try {
      await this.rt.run((r) => this.afterFinish(r));
      if (!this.failed) this.post({ type: 'finished', reports: this.rt.metrics() });
    } catch (e) {
      this.fail(e);
    }
  }

  /** A subtask that finished while a checkpoint is pending snapshots its final state. */
  private afterFinish(r: SubtaskRunner): void {
    if (this.latestTrigger > this.lastAborted)
      r.requestCheckpoint(this.barrier(this.latestTrigger));
  }

  /**
   * The master aborted `id` (and, implicitly, every older checkpoint still open): subtasks
   * give up its alignment and trigger, snapshots not yet written are released (their
   * copy-on-write views stop pinning old state), writes in progress stop at their next
   * operator, and the connectors are told.
   */
  private abort(id: number): void {
    this.lastAborted = Math.max(this.lastAborted, id);
    this.rt.abortCheckpoint(id);
    for (const [cp, snapshots] of this.early) {
      if (cp > id) continue;
      for (const s of snapshots) releaseSnapshot(s);
      this.early.delete(cp);
    }
    for (const cp of [...this.triggers.keys()]) if (cp <= id) this.triggers.delete(cp);
    for (const cp of [...this.acks.keys()]) if (cp <= id) this.acks.delete(cp);
    this.commits = this.commits
      .then(() => this.rt.notifyCheckpointAborted(id))
      .catch((e) => this.fail(e));
  }

  private trigger(id: number, t: CheckpointTrigger): void {
    this.triggers.set(id, t);
    this.latestTrigger = Math.max(this.latestTrigger, id);
    for (const s of this.early.get(id) ?? []) void this.write(s, t);
    this.early.delete(id);
    this.rt.requestCheckpoint(this.barrier(id, t));
  }

  private barrier(id: number, t = this.triggers.get(id)) {
    return {
      kind: 'barrier' as const,
      checkpointId: toCheckpointId(id),
      timestamp: t?.timestamp ?? Date.now(),
      savepoint: t?.savepoint ?? false,
    };
  }

  private onSnapshot(s: TaskSnapshot): void {
    if (s.checkpointId <= this.lastAborted) {
      releaseSnapshot(s);
      s.asyncPart?.catch(() => {});
      return;
    }
    const t = this.triggers.get(s.checkpointId);
    if (t) {
      void this.write(s, t);
      return;
    }
    this.early.set(s.checkpointId, [...(this.early.get(s.checkpointId) ?? []), s]);
  }

  /** Writes one subtask's snapshot and acknowledges once every local subtask has written. */
  private async write(s: TaskSnapshot, t: CheckpointTrigger): Promise<void> {
    const ack = this.ackFor(s.checkpointId);
    const started = performance.now();
    const aborted = () => s.checkpointId <= this.lastAborted || this.failed;
    try {
      // The connectors' asynchronous parts run beside the file writes.
      const asyncPart = s.asyncPart;
      asyncPart?.catch(() => {});
      for (const op of s.operators) {
        if (aborted()) return;
        const handle = await writeOperatorSnapshot(t.dir, s.checkpointId, op);
        ack.operators.push({ uid: op.uid, handle });
        ack.bytes += (handle.keyed?.bytes ?? 0) + (handle.operatorState?.bytes ?? 0);
        faultPoint('snapshot-async', `checkpoint ${s.checkpointId}`, this.config.workerIndex);
      }
      await asyncPart;
      if (aborted()) return;
    } catch (e) {
      if (e instanceof InjectedFault) {
        this.fail(e);
        return;
      }
      if (!ack.failed) {
        ack.failed = true;
        this.post({
          type: 'checkpointFailed',
          checkpointId: s.checkpointId,
          error: serializeError(e),
        });
      }
      return;
    } finally {
      releaseSnapshot(s);
    }
    ack.syncMs = Math.max(ack.syncMs, s.syncMs);
    ack.asyncMs = Math.max(ack.asyncMs, performance.now() - started);
    if (--ack.tasks === 0 && !ack.failed && this.acks.get(s.checkpointId) === ack) {
      this.acks.delete(s.checkpointId);
      const { operators, syncMs, asyncMs, bytes } = ack;
      this.post({ type: 'ack', checkpointId: s.checkpointId, operators, syncMs, asyncMs, bytes });
    }
  }

  private ackFor(id: number): PendingAck {
    let ack = this.acks.get(id);
    if (!ack) {
      ack = {
        operators: [],
        tasks: this.rt.runners.length,
        syncMs: 0,
        asyncMs: 0,
        bytes: 0,
        failed: false,
      };
      this.acks.set(id, ack);
    }
    return ack;
  }

  private close(): void {
    this.closed = true;
    this.commits
      .then(() => this.rt.close(false))
      .then(() => this.post({ type: 'closed', reports: this.rt.metrics() }))
      .catch((e) => this.fail(e));
  }

  private fail(e: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.post({ type: 'failed', error: serializeError(e) });
  }
}

/** Ends the copy-on-write views of a snapshot: the backend stops copying for them. */
const releaseSnapshot = (s: TaskSnapshot): void => {
  for (const op of s.operators) op.keyed?.release();
};

const writeOperatorSnapshot = async (
  dir: string,
  checkpointId: number,
  op: TaskSnapshot['operators'][number],
): Promise<SubtaskStateHandle> => {
  const keyed = op.keyed ? await op.keyed.write(dir, checkpointId) : undefined;
  const operatorState = op.operatorState.states.length
    ? await writeOperatorStateFile(
        dir,
        operatorStateFileName(op.uid, op.subtaskIndex),
        op.operatorState,
      )
    : undefined;
  return { index: op.subtaskIndex, keyed, operatorState };
};

/** What a restore read, in all and per operator subtask. */
export interface RestoreTally {
  bytesRead: number;
  /** Bytes of key groups restored without a read: each reads its chain on first use. */
  bytesDeferred: number;
  keyGroups: number;
  readonly operators: Array<{
    uid: string;
    subtask: number;
    bytesRead: number;
    keyGroups: number;
    ms: number;
  }>;
}

/**
 * Reads the state of every operator subtask on this worker: keyed state by key-group range
 * (only the byte ranges of the key groups each new subtask owns, from every old subtask whose
 * range intersects), operator state redistributed by its mode.
 */
export const loadRestoredState = async (
  graph: JobGraph,
  plan: ExecutionPlan,
  workerIndex: number,
  restore: RestoreSource,
  stats: RestoreTally = { bytesRead: 0, bytesDeferred: 0, keyGroups: 0, operators: [] },
  incrementalBase?: string,
): Promise<Map<string, Map<string, RestoredOperatorState>>> => {
  // Chains are referred to only by checkpoints of the directory whose blocks/ holds them.
  const reuse =
    incrementalBase !== undefined && resolve(dirname(restore.dir)) === resolve(incrementalBase);
  const out = new Map<string, Map<string, RestoredOperatorState>>();
  for (const chain of plan.chains) {
    for (let i = 0; i < chain.parallelism; i++) {
      if (plan.workerOf({ chain: chain.index, subtask: i }) !== workerIndex) continue;
      const perUid = new Map<string, RestoredOperatorState>();
      for (const id of chain.nodeIds) {
        const node = graph.nodes[id]!;
        const started = performance.now();
        const one = { bytesRead: 0, bytesDeferred: 0, keyGroups: 0 };
        const state = await loadOperator(node, i, restore, one, reuse);
        if (!state) continue;
        perUid.set(node.uid, state);
        stats.bytesRead += one.bytesRead;
        stats.bytesDeferred += one.bytesDeferred;
        stats.keyGroups += one.keyGroups;
        stats.operators.push({
          uid: node.uid,
          subtask: i,
          ...one,
          ms: performance.now() - started,
        });
      }
      out.set(taskKey(chain.index, i), perUid);
    }
  }
  return out;
};

const loadOperator = async (
  node: JobNode,
  subtask: number,
  { dir, metadata }: RestoreSource,
  stats: { bytesRead: number; bytesDeferred: number; keyGroups: number },
  reuseChains: boolean,
): Promise<RestoredOperatorState | undefined> => {
  const entry = metadata.operators.find((o) => o.uid === node.uid);
  if (!entry) return undefined;
  if (entry.maxParallelism !== node.maxParallelism) {
    throw new EddyError(
      'EDDY_CHECKPOINT_INCOMPATIBLE',
      `operator '${node.name}' (uid ${node.uid}): the checkpoint's state has maxParallelism ${entry.maxParallelism} but the job now has ${node.maxParallelism}; maxParallelism is fixed once a job has state: run with --max-parallelism ${entry.maxParallelism}`,
      { domain: 'user' },
    );
  }
  const keyGroups: LazyKeyGroup[] = [];
  let chains: ChainView | undefined;
  if (node.kind === 'operator' && node.keySelector) {
    const range = computeKeyGroupRange(node.maxParallelism, node.parallelism, subtask);
    const owned: Array<{ handle: AnyKeyedStateHandle; overlap: KeyGroupRange }> = [];
    for (const old of entry.subtasks) {
      if (!old.keyed) continue;
      const [start, end] = old.keyed.keyGroupRange;
      const overlap = intersectKeyGroupRanges(range, { start, end });
      if (overlap) owned.push({ handle: old.keyed, overlap });
    }
    if (reuseChains)
      chains = chainsInRange(
        owned.map((o) => o.handle),
        range,
      );
    for (const { handle, overlap } of owned) {
      if (chains !== undefined && isIncremental(handle)) {
        // The chains go on in this job's checkpoints, which keeps their files: nothing is
        // read now; each key group reads its chain on first use (keyed-file.ts deferKeyGroups).
        const deferred = deferKeyGroups(dir, handle, overlap);
        for (const g of deferred.groups) keyGroups.push(g);
        stats.bytesDeferred += deferred.bytesDeferred;
        stats.keyGroups += deferred.groups.length;
        continue;
      }
      // Read and CRC-checked now, decoded on first use (HeapKeyedStateBackend).
      const read = await readKeyGroupsLazily(dir, handle, overlap);
      for (const g of read.groups) keyGroups.push(g);
      stats.bytesRead += read.bytesRead;
      stats.keyGroups += read.groups.length;
    }
  }
  const olds = [];
  for (let k = 0; k < entry.parallelism; k++) {
    const handle = entry.subtasks.find((s) => s.index === k)?.operatorState;
    const read = handle ? await readOperatorStateElements(dir, handle) : undefined;
    stats.bytesRead += read?.bytesRead ?? 0;
    olds.push(read ?? { states: [] });
  }
  const operatorState = redistributeOperatorState(olds, node.parallelism)[subtask];
  return { operatorState, keyGroups, chains };
};
