/**
 * What a run keeps open in this process between its steps: a background sync
 * that one step starts and later steps wait on, then stop. The runner makes
 * one holder per run it executes and disposes of it when the run ends here
 * (succeeded, failed, stopped): whatever is still open is detached, which
 * leaves it resumable from its durable record. Nothing outlives the run that
 * owns it, and two runs in one process never share.
 */
export interface Detachable {
  /** This process lets go: stop the work without undoing it (a resume continues it). */
  detach(): Promise<void>;
}

export class RunResources {
  private readonly open = new Map<string, Promise<Detachable>>();

  /**
   * The resource kept under `key`, or a new one from `start`. Concurrent
   * callers share one start; a start that fails is forgotten, so the next
   * call tries again.
   */
  acquire<T extends Detachable>(key: string, start: () => Promise<T>): Promise<T> {
    const found = this.open.get(key);
    if (found) return found as Promise<T>;
    const p = start();
    this.open.set(key, p);
    p.catch(() => {
      if (this.open.get(key) === p) this.open.delete(key);
    });
    return p;
  }

  /** The resource ended by itself (stopped at cut-over, or detached): forget it. */
  release(key: string): void {
    this.open.delete(key);
  }

  /** The run ends in this process: detach what is still open, each once. */
  async dispose(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.allSettled(all.map(async (p) => (await p).detach()));
  }
}
