/**
 * What a run leaves behind on purpose while it works (a staging directory, a
 * setting it changed), recorded before it is made so that the run's end,
 * `abort`, or a resumed step can remove or set it back. The record itself is
 * the engine's (engine/cleanup.ts); the layers below only add and clear
 * entries through CleanupSink.
 */
export type CleanupItem =
  | { kind: 'local-dir'; path: string; what: string }
  | { kind: 'host-dir'; address: string; path: string; what: string }
  | { kind: 'config'; cluster: string; address: string; parameter: string; value: string; what: string };

/** Where a lower layer records a leftover (add, before making it) and clears it (done, once removed). */
export interface CleanupSink {
  add(id: string, item: CleanupItem): void;
  done(id: string): void;
}
