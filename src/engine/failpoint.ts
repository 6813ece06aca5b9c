/**
 * Test hook for crash tests: when REDIS_RUNBOOK_FAILPOINT equals `name`, the
 * process kills itself with SIGKILL at that point, exactly as a crash would
 * (no cleanup, no final write). Names are `<stepId>.<phase>` (just after the
 * runner persisted entering that phase) and `<stepId>:<point>` (inside a step).
 */
export function failpoint(name: string): void {
  if (process.env.REDIS_RUNBOOK_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}
