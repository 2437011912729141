/**
 * Barrier alignment for one subtask with N input channels: the decision half of Flink's
 * `SingleCheckpointBarrierHandler` in aligned mode. It holds no frames and touches no state; it
 * only says, per input event, which channels are blocked and when to snapshot or give up.
 *
 * Why align: checkpoints are Chandy-Lamport snapshots with aligned barriers. A barrier *n*
 * splits its channel into "before n" and "after n". Once a channel delivered *n*, processing
 * any further frame of it would put post-barrier records into the pre-barrier snapshot, so the
 * channel is blocked until every live input delivered *n* (an ended input has nothing after its
 * end, so it counts as aligned). Then the subtask snapshots, forwards the barrier and replays
 * the held frames. Held frames keep their credit (none is returned for them), so the sender of
 * a blocked channel stalls instead of this subtask buffering without bound: alignment costs
 * throughput on the fast inputs, never memory.
 *
 * Why some barriers are ignored: checkpoint ids only grow. `latest` is the highest id this
 * aligner started, completed, was told aborted, or was told taken (`markTaken`). A barrier
 * below it, or equal to it when that id is not the one being aligned, is obsolete: it belongs
 * to a checkpoint that is complete, declined or aborted here, and snapshotting it again would
 * acknowledge a checkpoint twice or one the master already gave up.
 *
 * Why a newer barrier cancels the current alignment (as in Flink): barrier *m > n* on a
 * channel that has not delivered *n* means its upstream skipped *n* (it declined or never took
 * it), so *n* can never align here. Waiting would block the other channels forever; instead *n*
 * is declined (the master must be told, or it waits for its timeout), its channels are
 * released, and *m* starts aligning.
 *
 * `released` lists exactly the channels whose `isBlocked` went from true to false in that
 * call. The channel whose barrier (or end) completes an alignment was never observably blocked,
 * so it is not listed, and a single-channel aligner never emits `released`.
 *
 * Hazards for the caller:
 * - Every frame of a blocked channel (records, watermarks, status, barriers, end) must be
 *   held, in arrival order, and replayed through the same path as new frames after `released`
 *   - not processed directly: a replayed frame can be the next checkpoint's barrier, which
 *   blocks the channel again and must hold the rest of its frames. Replay held frames before
 *   reading new ones, or a channel's frames get reordered.
 * - Return credit for a held frame only when it is replayed; returning it early lets a blocked
 *   channel's queue grow without bound.
 * - Alignment stalls the blocked channels' senders. That is safe because every sender emits a
 *   barrier on all its output channels together and credit is per channel; an exchange that
 *   let one full channel stop a sender's other channels could deadlock here.
 * - `declined` must reach the master; nothing in here times out. An input that never sends
 *   the barrier (and no newer one, and never ends) keeps its peers blocked until the master
 *   aborts the checkpoint (`onAbort`).
 * - Call `markTaken` after a snapshot taken outside alignment (e.g. the quiescent final one),
 *   or a late barrier of that checkpoint would snapshot it a second time.
 * - Calls that cannot happen if the caller holds frames correctly (a barrier or end on a
 *   blocked channel, anything after a channel's end, unknown channels) throw `InternalError`
 *   and leave the aligner unchanged: they mean frames were processed that should have been held.
 */
import type { CheckpointBarrier } from '../core/elements.js';
import { InternalError } from '../core/errors.js';

export type AlignerEvent =
  /** Every live input delivered the barrier (or ended): snapshot now and forward the barrier. */
  | { readonly kind: 'aligned'; readonly barrier: CheckpointBarrier }
  /** The alignment of `checkpointId` was given up: tell the master this subtask declines it. */
  | {
      readonly kind: 'declined';
      readonly checkpointId: number;
      readonly reason: 'newer-barrier' | 'aborted';
    }
  /** These channels are no longer blocked: replay the frames held for them, in arrival order. */
  | { readonly kind: 'released'; readonly channels: readonly number[] };

/** The checkpoint being aligned: its first barrier and the channels that delivered it. */
interface Alignment {
  readonly barrier: CheckpointBarrier;
  readonly blocked: Set<number>;
}

export class BarrierAligner {
  private readonly channels: ReadonlySet<number>;
  private readonly ended = new Set<number>();
  /** Highest checkpoint id started, completed, aborted or taken; see the module comment. */
  private latest = Number.NEGATIVE_INFINITY;
  private alignment: Alignment | undefined;

  constructor(channelIds: readonly number[]) {
    const channels = new Set(channelIds);
    if (channels.size !== channelIds.length) {
      throw new InternalError(`duplicate input channel ids: [${channelIds.join(', ')}]`);
    }
    this.channels = channels;
  }

  /** Frames (of any kind) from a blocked channel must be held by the caller, not processed. */
  isBlocked(channel: number): boolean {
    this.checkKnown(channel);
    return this.alignment?.blocked.has(channel) ?? false;
  }

  /** The checkpoint being aligned, if any. */
  get pending(): number | undefined {
    return this.alignment?.barrier.checkpointId;
  }

  onBarrier(channel: number, barrier: CheckpointBarrier): AlignerEvent[] {
    this.checkDeliverable(channel, `barrier ${barrier.checkpointId}`);
    const id = barrier.checkpointId;
    checkId(id);
    if (this.isObsolete(id)) return [];
    // Not obsolete: either newer than anything seen, or the one being aligned (then
    // `latest === id`, because nothing raises `latest` past a pending alignment).
    const events = id > this.latest ? this.start(barrier) : [];
    return events.concat(this.arrive(channel));
  }

  onEndOfInput(channel: number): AlignerEvent[] {
    this.checkDeliverable(channel, 'end of input');
    this.ended.add(channel);
    // One fewer live input to wait for: the ended channel may have been the last one missing.
    return this.alignment !== undefined && this.allLiveBlocked() ? this.complete() : [];
  }

  /** The master aborted `checkpointId` (and, implicitly, every older one). */
  onAbort(checkpointId: number): AlignerEvent[] {
    checkId(checkpointId);
    const pending = this.pending;
    const events = pending !== undefined && pending <= checkpointId ? this.cancel('aborted') : [];
    // Raised even with nothing pending: a barrier of an aborted checkpoint that arrives later
    // must not start an alignment the master no longer waits for.
    this.latest = Math.max(this.latest, checkpointId);
    return events;
  }

  /** The subtask took checkpoint `checkpointId` by other means (e.g. all inputs had ended); barriers <= it are obsolete. */
  markTaken(checkpointId: number): void {
    checkId(checkpointId);
    const pending = this.pending;
    if (pending !== undefined && pending <= checkpointId) {
      // The alignment would later snapshot `pending` again (or an older checkpoint after a
      // newer one); a snapshot outside alignment is only possible when no input is blocked.
      throw new InternalError(
        `checkpoint ${checkpointId} taken while checkpoint ${pending} is still aligning`,
      );
    }
    this.latest = Math.max(this.latest, checkpointId);
  }

  private isObsolete(id: number): boolean {
    return id < this.latest || (id === this.latest && this.pending !== id);
  }

  /** Begins aligning `barrier`, first giving up the alignment it supersedes. */
  private start(barrier: CheckpointBarrier): AlignerEvent[] {
    const events = this.alignment === undefined ? [] : this.cancel('newer-barrier');
    this.alignment = { barrier, blocked: new Set() };
    this.latest = barrier.checkpointId;
    return events;
  }

  /** `channel` delivered the pending barrier: block it, or complete if it was the last. */
  private arrive(channel: number): AlignerEvent[] {
    if (this.allLiveBlocked(channel)) return this.complete();
    this.alignment!.blocked.add(channel);
    return [];
  }

  private complete(): AlignerEvent[] {
    const { barrier, blocked } = this.alignment!;
    this.alignment = undefined;
    return [{ kind: 'aligned', barrier }, ...released(blocked)];
  }

  private cancel(reason: 'newer-barrier' | 'aborted'): AlignerEvent[] {
    const { barrier, blocked } = this.alignment!;
    this.alignment = undefined;
    return [{ kind: 'declined', checkpointId: barrier.checkpointId, reason }, ...released(blocked)];
  }

  /** Whether every live channel, except `arriving`, has delivered the pending barrier. */
  private allLiveBlocked(arriving?: number): boolean {
    const blocked = this.alignment!.blocked;
    for (const c of this.channels) {
      if (c !== arriving && !this.ended.has(c) && !blocked.has(c)) return false;
    }
    return true;
  }

  private checkKnown(channel: number): void {
    if (!this.channels.has(channel)) {
      throw new InternalError(`unknown input channel ${channel}`);
    }
  }

  /** A frame of `channel` is being processed: impossible if it ended or is blocked. */
  private checkDeliverable(channel: number, what: string): void {
    this.checkKnown(channel);
    if (this.ended.has(channel)) {
      throw new InternalError(`${what} on input channel ${channel} after its end of input`);
    }
    if (this.alignment?.blocked.has(channel)) {
      throw new InternalError(
        `${what} on input channel ${channel}, which is blocked by the alignment of checkpoint ` +
          `${this.pending}: its frames must be held until it is released`,
      );
    }
  }
}

/** Comparisons with NaN or fractions would silently make every barrier obsolete or newer. */
const checkId = (id: number): void => {
  if (!Number.isSafeInteger(id)) throw new InternalError(`invalid checkpoint id ${id}`);
};

/** The `released` event for `blocked`, sorted ascending; none when nothing was blocked. */
const released = (blocked: ReadonlySet<number>): AlignerEvent[] =>
  blocked.size === 0 ? [] : [{ kind: 'released', channels: [...blocked].sort((a, b) => a - b) }];
