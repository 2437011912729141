/**
 * Task slots of the cluster: which worker process offers how many, which attempt holds which.
 * Pure bookkeeping (no I/O); the master (master.ts) calls it on registrations, losses,
 * allocations and releases.
 *
 * Allocation spreads an attempt over the processes: each next worker goes to the process with
 * the most free slots (ties: the one registered first). So p=2 on two processes of 2 slots
 * uses one slot of each (two CPUs), and a lost process takes as few workers with it as it can.
 */

/** One slot held by an attempt: worker `worker` of the attempt runs in process `process`. */
export interface SlotGrant {
  readonly process: string;
  readonly worker: number;
}

interface ProcessSlots {
  readonly slots: number;
  /** Workers held here, by attempt. */
  readonly held: Map<string, Set<number>>;
}

export class SlotTable {
  private readonly processes = new Map<string, ProcessSlots>();

  /** A worker process registered with `slots` slots. */
  add(process: string, slots: number): void {
    this.processes.set(process, { slots, held: new Map() });
  }

  /** The process is gone; returns the attempts that held slots there. */
  remove(process: string): string[] {
    const p = this.processes.get(process);
    this.processes.delete(process);
    return p ? [...p.held.keys()] : [];
  }

  has(process: string): boolean {
    return this.processes.has(process);
  }

  slotsOf(process: string): number {
    return this.processes.get(process)?.slots ?? 0;
  }

  freeOf(process: string): number {
    const p = this.processes.get(process);
    if (!p) return 0;
    let used = 0;
    for (const s of p.held.values()) used += s.size;
    return p.slots - used;
  }

  totalSlots(): number {
    let n = 0;
    for (const p of this.processes.values()) n += p.slots;
    return n;
  }

  totalFree(): number {
    let n = 0;
    for (const id of this.processes.keys()) n += this.freeOf(id);
    return n;
  }

  /** Slots held by attempts other than those in `except` (e.g. the other jobs' attempts). */
  heldBy(attempts: (attempt: string) => boolean): number {
    let n = 0;
    for (const p of this.processes.values())
      for (const [a, s] of p.held) if (attempts(a)) n += s.size;
    return n;
  }

  /** Workers 0..n-1 of `attempt`, spread over the processes; undefined if fewer are free. */
  allocate(attempt: string, n: number): SlotGrant[] | undefined {
    if (this.totalFree() < n) return undefined;
    const free = new Map([...this.processes.keys()].map((id) => [id, this.freeOf(id)]));
    const grants: SlotGrant[] = [];
    for (let worker = 0; worker < n; worker++) {
      let best: string | undefined;
      for (const [id, f] of free)
        if (f > 0 && (best === undefined || f > free.get(best)!)) best = id;
      free.set(best!, free.get(best!)! - 1);
      grants.push({ process: best!, worker });
      const held = this.processes.get(best!)!.held;
      const set = held.get(attempt) ?? new Set<number>();
      set.add(worker);
      held.set(attempt, set);
    }
    return grants;
  }

  /** Worker `worker` of `attempt` ended in `process`: its slot is free again. */
  release(attempt: string, process: string, worker: number): void {
    const held = this.processes.get(process)?.held;
    const set = held?.get(attempt);
    if (!set) return;
    set.delete(worker);
    if (set.size === 0) held!.delete(attempt);
  }

  /** Every slot of `attempt`, wherever it is. */
  releaseAttempt(attempt: string): void {
    for (const p of this.processes.values()) p.held.delete(attempt);
  }
}
