/**
 * The NATS source's split enumerator (in the job master): on a fresh start it asks the server
 * once which subjects to read (stream info with a subjects filter), fixes the bound of a
 * bounded read (the stream's last sequence now), and assigns subject `i` (sorted) to reader
 * `i % p`, as the file source deals its files. Restored, readers keep their splits (operator
 * state) and it assigns only what its own state lists as unassigned.
 */
import type { StreamInfo } from '@nats-io/jetstream';
import { EddyError } from '../../core/errors.js';
import type { SplitEnumerator, SplitEnumeratorContext } from '../../runtime/io.js';
import { type NatsConnectionSettings, openLink } from './connection.js';
import {
  configError,
  ioError,
  isAuthFailure,
  isJetStreamDisabled,
  isStreamNotFound,
  reason,
} from './errors.js';
import { natsJetStream } from './libs.js';
import { assignedTo, checkSequenceSplit, type SequenceSplitState } from './positions.js';
import { resolveSubjects } from './subjects.js';

/** What the enumerator needs of the source's options. */
export interface SplitDiscoveryOptions extends NatsConnectionSettings {
  stream: string;
  subjects?: string | string[];
  bounded?: boolean;
}

/**
 * State of the NATS split enumerator (in the checkpoint's `_metadata`): the splits discovered
 * but not assigned yet (normally none), and how many splits the source has in all.
 */
export interface NatsEnumeratorState {
  unassigned: SequenceSplitState[];
  splits: number;
}

/** Requests to JetStream time out after this long (then count as an outage). */
export const API_TIMEOUT_MS = 5000;

const asList = (s: string | string[] | undefined): string[] | undefined =>
  s === undefined ? undefined : typeof s === 'string' ? [s] : s;

/**
 * Asks the server for the splits of a fresh start: one per resolved subject, at position 0,
 * with the bound of a bounded read. Refusals are `EDDY_CONNECTOR_CONFIG` naming the fix.
 */
export const discoverSplits = async (o: SplitDiscoveryOptions): Promise<SequenceSplitState[]> => {
  const link = await openLink(o, 'source');
  const { server } = link;
  try {
    const jsm = await natsJetStream.get().jetstreamManager(link.nc, { timeout: API_TIMEOUT_MS });
    const requested = asList(o.subjects);
    // One requested subject or pattern: let the server filter (streams may hold many subjects).
    const filter = requested?.length === 1 ? requested[0]! : '>';
    const info: StreamInfo = await jsm.streams.info(o.stream, { subjects_filter: filter });
    const present = Object.keys(info.state.subjects ?? {});
    const resolved = resolveSubjects(requested, {
      configured: info.config.subjects ?? [],
      present,
    });
    if ('problem' in resolved) {
      const p = resolved.problem;
      const theirs = JSON.stringify(info.config.subjects ?? []);
      throw p.kind === 'outside'
        ? configError(
            'source',
            server,
            `has no subject '${p.subject}' in stream '${o.stream}' (its subjects: ${theirs})`,
            'fix `subjects` or add the subject to the stream',
          )
        : configError(
            'source',
            server,
            `has no subjects matching ${JSON.stringify(p.requested ?? '>')} with messages in stream '${o.stream}' (its subjects: ${theirs})`,
            'fix `subjects`, publish to the stream first, or name concrete subjects',
          );
    }
    const withMessages = new Set(present);
    const last = info.state.last_seq;
    const n = resolved.subjects.length;
    return resolved.subjects.map((split): SequenceSplitState => {
      const s: SequenceSplitState = { split, position: 0, finished: false, of: n };
      // A subject with no messages now has nothing up to the bound: it finishes at once.
      if (o.bounded === true) s.end = withMessages.has(split) ? last : 0;
      return s;
    });
  } catch (e) {
    throw classifyStartError(e, server, o.stream);
  } finally {
    await link.close();
  }
};

/** Turns a failure at start into a config error (a refusal) or a retriable I/O error. */
export const classifyStartError = (e: unknown, server: string, stream: string): EddyError => {
  if (e instanceof EddyError) return e;
  if (isStreamNotFound(e)) {
    return configError(
      'source',
      server,
      `has no stream '${stream}'`,
      'create it (e.g. `nats stream add`) or fix the `stream` option',
      e,
    );
  }
  if (isJetStreamDisabled(e)) {
    return configError(
      'source',
      server,
      'does not run JetStream',
      'start nats-server with JetStream enabled (-js)',
      e,
    );
  }
  if (isAuthFailure(e)) {
    return configError(
      'source',
      server,
      `refused access to stream '${stream}' (${reason(e)})`,
      'grant the user the JetStream API permissions ($JS.API.>)',
      e,
    );
  }
  return ioError('source', server, `cannot read stream '${stream}'`, e);
};

const restoreState = (state: unknown): NatsEnumeratorState => {
  // No enumerator state: nothing unassigned (the readers' state holds every split).
  if (state === undefined || state === null) return { unassigned: [], splits: 0 };
  const s = state as Partial<NatsEnumeratorState>;
  if (
    typeof s !== 'object' ||
    !Array.isArray(s.unassigned) ||
    !(Number.isSafeInteger(s.splits) && (s.splits as number) >= 0)
  ) {
    throw new EddyError(
      'EDDY_STATE',
      `nats source: restored split enumerator state is not a split list: ${JSON.stringify(state)}`,
    );
  }
  return {
    unassigned: s.unassigned.map((e) =>
      checkSequenceSplit(e, 'nats source: restored unassigned split'),
    ),
    splits: s.splits as number,
  };
};

/** Deals the splits: split `k` to reader `k % p`, once per reader; then no more splits. */
export class NatsSplitEnumerator implements SplitEnumerator {
  private splits: readonly SequenceSplitState[] = [];
  private total = 0;
  private readonly served = new Set<number>();

  constructor(
    private readonly ctx: SplitEnumeratorContext,
    private readonly options: SplitDiscoveryOptions,
    private readonly discover: (
      o: SplitDiscoveryOptions,
    ) => Promise<SequenceSplitState[]> = discoverSplits,
  ) {}

  async start(): Promise<void> {
    if (this.ctx.isRestored) {
      const state = restoreState(this.ctx.restoredState);
      this.splits = state.unassigned;
      this.total = state.splits;
    } else {
      this.splits = await this.discover(this.options);
      this.total = this.splits.length;
    }
  }

  addReader(subtask: number): void {
    if (!this.served.has(subtask)) {
      this.served.add(subtask);
      const mine = assignedTo(this.splits, this.ctx.parallelism, subtask);
      if (mine.length > 0) this.ctx.assignSplits(subtask, mine);
    }
    this.ctx.signalNoMoreSplits(subtask);
  }

  snapshotState(_checkpointId: number): NatsEnumeratorState {
    const p = this.ctx.parallelism;
    const unassigned = this.splits.filter((_, k) => !this.served.has(k % p));
    return { unassigned, splits: this.total };
  }

  close(): void {}
}
