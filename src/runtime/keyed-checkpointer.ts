/**
 * How one keyed operator subtask checkpoints its keyed state: in full, or incrementally
 * (docs/ARCHITECTURE.md, "Incremental checkpoints").
 *
 * - Full mode, and every savepoint: a full copy-on-write view written into the checkpoint's
 *   own directory (savepoints stay self-contained).
 * - Incremental mode: the first checkpoint (and any after the chain is lost) writes a *base*
 *   of every key group into the shared directory; each later one writes a *delta*, the keys
 *   changed since the previous incremental checkpoint this subtask wrote, referring to the
 *   earlier blocks for everything else.
 *
 * The previous chains are those of the last incremental checkpoint whose files this subtask
 * wrote completely, whether or not the job master then completed the checkpoint: its files are
 * intact and stay until retention finds no retained checkpoint referring to them, and a later
 * checkpoint that refers to them keeps them. A delta that could not be written gives its keys
 * back to the backend, so the next delta includes them; a base that could not be written leaves
 * no previous chains, so the next checkpoint writes a base again.
 */
import {
  type AnyKeyedStateHandle,
  type ChainView,
  chainsOf,
  type KeyGroupChain,
  keyedStateFileName,
  sharedKeyedFileName,
  shouldCompact,
  writeKeyedStateFile,
  writeSharedBase,
  writeSharedDelta,
} from '../checkpoint/index.js';
import type { KeyGroupRange } from '../keygroups/index.js';
import type { KeyedStateBackend, WholeKeyGroupRule } from '../state/index.js';

/**
 * Which changed key groups get a new base: the compaction rule on each one's previous chain,
 * decided when the view is taken so the backend captures those key groups whole.
 */
const compactionRule = (previous: ChainView): WholeKeyGroupRule => {
  const chains = new Map<number, KeyGroupChain>();
  for (const c of previous.chains) chains.set(c.keyGroup, c);
  return (keyGroup, changed, liveEntries) => {
    const chain = chains.get(keyGroup);
    return (
      chain !== undefined && shouldCompact({ keyGroup, chain: chain.blocks, changed, liveEntries })
    );
  };
};

/** One keyed snapshot taken at a barrier, written (or released) later by the worker. */
export interface KeyedSnapshot {
  readonly kind: 'full' | 'base' | 'delta';
  /**
   * Writes the snapshot for checkpoint `checkpointId` whose directory is `checkpointDir`.
   * The caller must keep the snapshot unreleased until this settles, then release it.
   */
  write(checkpointDir: string, checkpointId: number): Promise<AnyKeyedStateHandle>;
  /** Ends the snapshot's views; idempotent. */
  release(): void;
}

/** What a subtask needs to checkpoint its keyed state. */
export interface KeyedCheckpointerOptions {
  readonly uid: string;
  readonly subtaskIndex: number;
  readonly keyGroupRange: KeyGroupRange;
  /** Checkpoint incrementally; the backend must then be created with `trackChanges`. */
  readonly incremental: boolean;
  /**
   * The restored chains of this subtask's key groups, if they can be referred to (the restore
   * was an incremental checkpoint of this job's checkpoint directory).
   */
  readonly restoredChains?: ChainView | undefined;
}

/** Takes and writes the keyed snapshots of one operator subtask (see the module note). */
export class KeyedCheckpointer {
  private previous: ChainView | undefined;
  /** Incremental snapshots taken so far; only the newest one's outcome sets `previous`. */
  private taken = 0;

  constructor(
    private readonly backend: KeyedStateBackend,
    private readonly options: KeyedCheckpointerOptions,
  ) {
    this.previous = options.incremental ? options.restoredChains : undefined;
  }

  /** Takes the snapshot for a barrier, synchronously (O(key groups × states)). */
  take(savepoint: boolean): KeyedSnapshot {
    if (!this.options.incremental || savepoint) return this.full();
    const seq = ++this.taken;
    const previous = this.previous;
    if (previous !== undefined) {
      const delta = this.backend.deltaView(compactionRule(previous));
      if (delta !== undefined) {
        return {
          kind: 'delta',
          write: async (dir, id) => {
            const handle = await writeSharedDelta(
              dir,
              this.fileName(id),
              this.range,
              previous,
              delta,
            );
            delta.complete();
            if (seq === this.taken) this.previous = chainsOf(handle);
            return handle;
          },
          release: () => delta.release(),
        };
      }
    }
    // No chains to add to (or a delta still being written): a base, from now on.
    this.backend.forgetChanges();
    // Until this base is written there is nothing to add to: the old chains miss the changes
    // just forgotten (a delta taken meanwhile would silently lose them).
    this.previous = undefined;
    const view = this.backend.snapshotView();
    return {
      kind: 'base',
      write: async (dir, id) => {
        const handle = await writeSharedBase(dir, this.fileName(id), this.range, view);
        if (seq === this.taken) this.previous = handle;
        return handle;
      },
      release: () => view.release(),
    };
  }

  private full(): KeyedSnapshot {
    const view = this.backend.snapshotView();
    const { uid, subtaskIndex } = this.options;
    return {
      kind: 'full',
      write: (dir) =>
        writeKeyedStateFile(dir, keyedStateFileName(uid, subtaskIndex), this.range, view),
      release: () => view.release(),
    };
  }

  private get range(): KeyGroupRange {
    return this.options.keyGroupRange;
  }

  private fileName(checkpointId: number): string {
    return sharedKeyedFileName(this.options.uid, this.options.subtaskIndex, checkpointId);
  }
}
