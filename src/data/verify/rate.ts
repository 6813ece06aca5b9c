/**
 * A token bucket in keys per second, shared by every reader of one
 * comparison, so `--qps` bounds the load on each cluster whatever the number
 * of shards. 0 means unlimited.
 */
export class RateLimiter {
  private tokens: number;
  private last = Date.now();
  constructor(private readonly perSecond: number) {
    this.tokens = perSecond;
  }

  async take(n: number): Promise<void> {
    if (this.perSecond <= 0) return;
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond);
      this.last = now;
      if (this.tokens >= n || this.tokens >= this.perSecond) {
        this.tokens -= n;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((n - this.tokens) / this.perSecond) * 1000)));
    }
  }
}
