/**
 * The TCP ports each test file and benchmark takes on this machine: one table, kept true by
 * test/unit/ports.test.ts (which also reads every file under test/ and bench/ for port literals).
 *
 * Why one table: no two files may share a port. The runner runs files one at a time today, but a
 * node left running by a failed file (or a sandbox a crashed run never took down) must not break
 * the next file that wants the same port. And every port and its cluster bus port (port + 10000,
 * which every redis node of a sandbox binds too) stays below 32768, where Linux's ephemeral range
 * starts: above it, any outgoing connection may hold the port a node is about to bind.
 *
 * How a sandbox spends ports from its base port B (src/sandbox/layout.ts, src/sandbox/sshd.ts):
 * masters B..B+m-1, then the replicas of each master in turn (3 masters x 1 replica: B..B+5); a
 * target cluster (--target-masters) is laid out the same way from B+100; --ssh adds a loopback
 * sshd on B+99. `sandbox up --hosts N` puts the same port numbers on the hosts' own addresses (in
 * network namespaces, sshd on port 22 there); they are listed here all the same.
 *
 * Ranges are inclusive. To add a file: pick a free range (the table is in port order), add its
 * row, and run the unit test. Pick a new range rather than sharing one, even for a file that
 * never runs in the same suite.
 */
export type PortRange = readonly [number, number];

export interface PortUse {
  /** Relative to the repository root. */
  file: string;
  ranges: ReadonlyArray<PortRange>;
  what: string;
}

export const PORT_TABLE: ReadonlyArray<PortUse> = [
  { file: 'test/e2e/manual-failover.test.ts', ranges: [[7200, 7205]], what: 'sandbox 3x1' },
  { file: 'test/e2e/force-failover.test.ts', ranges: [[7250, 7255]], what: 'sandbox 3x1' },
  { file: 'test/e2e/crash-resume.test.ts', ranges: [[7300, 7305]], what: 'sandbox 3x1' },
  {
    file: 'test/e2e/errors.test.ts',
    ranges: [
      [7400, 7405],
      [7498, 7499],
    ],
    what: 'sandbox 3x1; 7498-7499: seeds nothing may listen on (expects ECONNREFUSED)',
  },
  { file: 'test/e2e/failover-drill.test.ts', ranges: [[7450, 7455]], what: 'sandbox 3x1' },
  { file: 'test/e2e/decommission.test.ts', ranges: [[7500, 7505]], what: 'sandbox 3x1' },
  {
    file: 'test/integration/sync-core.test.ts',
    ranges: [
      [7520, 7524],
      [7697, 7697],
    ],
    what: 'target sandbox 5x0; standalone source redis-server 7697',
  },
  { file: 'test/integration/slot-move.test.ts', ranges: [[7540, 7542]], what: 'sandbox 3x0' },
  {
    file: 'test/e2e/migrate-copy-files.test.ts',
    ranges: [
      [7560, 7565],
      [7659, 7665],
    ],
    what: 'source 3x1, sshd 7659, target 3x1',
  },
  {
    file: 'test/e2e/migrate-copy-aof.test.ts',
    ranges: [
      [7570, 7575],
      [7669, 7675],
    ],
    what: 'source 3x1, sshd 7669, target 3x1 (appendonly)',
  },
  {
    file: 'test/e2e/migrate-consolidate-reshard.test.ts',
    ranges: [
      [7580, 7585],
      [7679, 7689],
    ],
    what: 'source 3x1, sshd 7679, target 5x1',
  },
  {
    file: 'test/integration/sandbox.test.ts',
    ranges: [
      [7600, 7605],
      [7700, 7703],
    ],
    what: 'sandboxUp in process: source 3x1, target 2x1',
  },
  {
    file: 'test/e2e/migrate-sync.test.ts',
    ranges: [
      [7620, 7625],
      [7720, 7729],
    ],
    what: 'source 3x1, target 5x1',
  },
  {
    file: 'test/e2e/migrate-sync-engines.test.ts',
    ranges: [
      [7630, 7635],
      [7730, 7735],
    ],
    what: 'source 3x1, target 3x1',
  },
  {
    file: 'test/integration/verify.test.ts',
    ranges: [
      [7650, 7652],
      [7690, 7691],
      [7750, 7754],
    ],
    what: 'source 3x0, target 5x0 (seeded); two standalone redis-servers 7690-7691',
  },
  { file: 'test/integration/rdb.test.ts', ranges: [[7695, 7695]], what: 'standalone redis-server' },
  { file: 'test/integration/replica-link.test.ts', ranges: [[7696, 7696]], what: 'standalone redis-server' },
  { file: 'test/e2e/guided.test.ts', ranges: [[7800, 7805]], what: 'sandbox 3x1' },
  { file: 'bench/failover.ts', ranges: [[7900, 7905]], what: 'sandbox 3x1' },
  {
    file: 'bench/verify.ts',
    ranges: [
      [7950, 7952],
      [8050, 8054],
    ],
    what: 'source 3x0, target 5x0 (seeded)',
  },
  {
    file: 'bench/peers-sync.ts',
    ranges: [
      [8800, 8802],
      [8900, 8904],
      [8950, 8959],
    ],
    what: 'source 3x0, target 5x0 (empty), RedisShake status ports',
  },
  { file: 'test/integration/other-server-guard.test.ts', ranges: [[7998, 7998]], what: 'standalone redis-server' },
  { file: 'bench/drill.ts', ranges: [[8150, 8155]], what: 'sandbox 3x1' },
  { file: 'bench/reshard.ts', ranges: [[8200, 8202]], what: 'sandbox 3x0' },
  { file: 'bench/move-ceiling.ts', ranges: [[8230, 8232]], what: 'sandbox 3x0' },
  {
    file: 'bench/migrations.ts',
    ranges: [
      [8250, 8255],
      [8270, 8275],
      [8349, 8355],
      [8369, 8379],
    ],
    what: 'copy: source 3x1 8250, sshd 8349, target 3x1 8350; reshard: source 3x1 8270, sshd 8369, target 5x1 8370',
  },
  {
    file: 'bench/sync.ts',
    ranges: [
      [8420, 8422],
      [8520, 8524],
    ],
    what: 'source 3x0, target 5x0',
  },
  { file: 'test/e2e/plan-tamper.test.ts', ranges: [[9000, 9005]], what: 'sandbox 3x1' },
  { file: 'test/e2e/run-ownership.test.ts', ranges: [[9020, 9025]], what: 'sandbox 3x1' },
  { file: 'test/e2e/cluster-identity.test.ts', ranges: [[9040, 9045]], what: 'sandbox 3x1' },
  { file: 'test/e2e/secrets-journal.test.ts', ranges: [[9100, 9105]], what: 'sandbox 3x1' },
  { file: 'test/unit/scrub.test.ts', ranges: [[9150, 9150]], what: 'a fake master (net.Server) refusing AUTH' },
  {
    file: 'test/e2e/state-safety.test.ts',
    ranges: [[9190, 9190]],
    what: 'a seed nothing may listen on (no connection may be tried)',
  },
  {
    file: 'test/e2e/file-safety.test.ts',
    ranges: [
      [9200, 9205],
      [9250, 9255],
      [9299, 9299],
    ],
    what: 'sandboxPair: source 3x1, target 3x1 (a second sandbox), sshd 9299',
  },
  {
    file: 'test/e2e/tls.test.ts',
    ranges: [
      [9300, 9305],
      [9320, 9325],
    ],
    what: 'two TLS sandboxes 3x1: source, target',
  },
  {
    file: 'test/integration/net-bounds.test.ts',
    ranges: [[9390, 9393]],
    what: 'full accept queue, redis-server, proxy, mute server',
  },
  { file: 'test/e2e/ssh-limits.test.ts', ranges: [[9399, 9399]], what: 'loopback sshd' },
  {
    file: 'test/e2e/convergence.test.ts',
    ranges: [
      [9400, 9405],
      [9440, 9443],
      [9450, 9455],
      [9480, 9485],
      [9490, 9495],
      [9499, 9509],
    ],
    what: 'consolidate: 3x1, sshd 9499, target 5x1 9500; decommission 4x0; rebalance 3x1; failover 3x1; drill 3x1',
  },
  {
    file: 'test/soak/convergence.test.ts',
    ranges: [
      [9600, 9605],
      [9640, 9643],
      [9650, 9655],
      [9680, 9685],
      [9690, 9695],
      [9699, 9709],
    ],
    what: 'the scenarios of test/e2e/convergence.test.ts, each at its e2e base + 200',
  },
  {
    file: 'test/e2e/live-destructive.test.ts',
    ranges: [
      [9460, 9465],
      [9560, 9565],
    ],
    what: 'source 3x1, target 3x1',
  },
  { file: 'test/integration/slot-safety.test.ts', ranges: [[9470, 9472]], what: 'sandbox 3x0' },
  {
    file: 'test/integration/multihost-sandbox.test.ts',
    ranges: [
      [11000, 11005],
      [11100, 11103],
      [11400, 11405],
      [11620, 11625],
    ],
    what: '--hosts 3: source 3x1, target 2x1; refused ups at 11400; a failed --hosts 2 up at 11620',
  },
  {
    file: 'test/e2e/multihost-copy-files.test.ts',
    ranges: [
      [11200, 11205],
      [11300, 11305],
    ],
    what: '--hosts 3: source 3x1, target 3x1',
  },
  {
    file: 'test/chaos/sigkill-matrix.test.ts',
    ranges: [
      [11500, 11505],
      [11599, 11607],
      [11700, 11705],
      [11799, 11807],
      [11900, 11905],
      [11999, 12007],
      [12100, 12105],
      [12199, 12207],
      [12300, 12305],
      [12399, 12407],
    ],
    what: 'a sandbox per runbook, bases 11500..12300 by 200: source 3x1, sshd base+99, target up to 4x1',
  },
  { file: 'test/chaos/write-load-failover.test.ts', ranges: [[12500, 12505]], what: 'sandbox 3x1' },
  {
    file: 'test/chaos/write-load-sync.test.ts',
    ranges: [
      [12600, 12605],
      [12699, 12705],
    ],
    what: 'migrationSandbox: source 3x1, sshd 12699, target 3x1',
  },
  {
    file: 'test/chaos/write-load-copy.test.ts',
    ranges: [
      [12800, 12805],
      [12899, 12905],
    ],
    what: 'migrationSandbox: source 3x1, sshd 12899, target 3x1',
  },
  {
    file: 'test/chaos/sigkill-matrix-hosts.test.ts',
    ranges: [
      [13000, 13005],
      [13100, 13107],
      [13200, 13205],
      [13300, 13307],
    ],
    what: '--hosts 3, a sandbox per case, bases 13000 and 13200: source 3x1, target up to 4x1',
  },
  {
    file: 'bench/scale.ts',
    ranges: [
      [13500, 13502],
      [13599, 13602],
    ],
    what: 'source 3x0, sshd 13599, target 3x0',
  },
  {
    file: 'test/chaos/node-kill.test.ts',
    ranges: [
      [14500, 14505],
      [14599, 14605],
    ],
    what: 'source 3x1, sshd 14599, target 3x1',
  },
  {
    file: 'test/chaos/copy-faults.test.ts',
    ranges: [
      [14700, 14705],
      [14799, 14805],
    ],
    what: 'source 3x1, sshd 14799, target 3x1',
  },
  {
    file: 'test/chaos/disk-full.test.ts',
    ranges: [
      [14900, 14905],
      [14999, 15005],
    ],
    what: 'source 3x1, sshd 14999, target 3x1',
  },
  {
    file: 'test/chaos/partition.test.ts',
    ranges: [
      [15100, 15105],
      [15200, 15205],
    ],
    what: '--hosts 3: source 3x1, target 3x1',
  },
  {
    file: 'test/chaos/partition-data.test.ts',
    ranges: [
      [15300, 15305],
      [15400, 15405],
    ],
    what: '--hosts 3: source 3x1, target 3x1',
  },
  {
    file: 'test/integration/refuses-connections.test.ts',
    ranges: [[15690, 15690]],
    what: 'a listener with a full accept queue',
  },
  { file: 'test/chaos/drill-loss.test.ts', ranges: [[15800, 15805]], what: '--hosts 3: sandbox 3x1' },
  {
    file: 'test/e2e/redis-shake-real.test.ts',
    ranges: [
      [15820, 15822],
      [15850, 15852],
      [15920, 15922],
      [15950, 15954],
    ],
    what: 'sandboxes 3x0 -> 3x0 and 3x0 -> 5x0 (RedisShake status ports: ephemeral, on loopback)',
  },
  {
    file: 'test/chaos/latency.test.ts',
    ranges: [
      [16100, 16105],
      [16199, 16205],
      [16300, 16305],
      [16310, 16310],
    ],
    what: 'migrationSandbox: source 3x1, sshd 16199, target 3x1; delay proxies 16300-16305 (nodes), 16310 (sshd)',
  },
  {
    file: 'test/integration/rdb-servers.test.ts',
    ranges: [[16400, 16405]],
    what: 'one standalone server per build (the default redis-server and each REDIS_BUILDS build), one at a time',
  },
  {
    file: 'test/e2e/hash-field-ttl.test.ts',
    ranges: [
      [16410, 16415],
      [16510, 16515],
    ],
    what: 'redis-7.4.1 source 3x1, target 2x1 (16510-16513; 16514-16515 kept for a 3x1 target)',
  },
  {
    file: 'test/e2e/migrate-copy-aof-versions.test.ts',
    ranges: [
      [16600, 16605],
      [16699, 16705],
    ],
    what: 'one sandbox at a time per server pair: source 3x1, sshd 16699, target 3x1 (appendonly)',
  },
  {
    file: 'test/e2e/verify-field-ttl.test.ts',
    ranges: [
      [16800, 16805],
      [16900, 16905],
    ],
    what: 'one sandbox at a time (3x0 source 16800-16802, 3x0 target 16900-16902; the rest kept for replicas)',
  },
  {
    file: 'test/e2e/server-versions.test.ts',
    ranges: [
      [17000, 17005],
      [17100, 17105],
    ],
    what: 'one sandbox at a time per server build (3x1 source, 3x1 target)',
  },
  {
    file: 'test/e2e/server-upgrades.test.ts',
    ranges: [
      [19800, 19805],
      [19900, 19905],
    ],
    what: 'one sandbox at a time per pair of server builds (3x1 source, 3x1 target)',
  },
  {
    file: 'test/e2e/server-pairs.test.ts',
    ranges: [
      [20000, 20005],
      [20100, 20105],
    ],
    what: 'one sandbox at a time per pair of server builds (3x1 source, 3x1 target)',
  },
  { file: 'test/integration/slot-move-valkey.test.ts', ranges: [[20700, 20705]], what: 'Valkey 8 sandbox 3x1' },
  {
    file: 'bench/peers-verify.ts',
    ranges: [
      [8600, 8602],
      [8700, 8704],
    ],
    what: 'source 3x0, target 5x0 (seeded)',
  },
  { file: 'bench/setslot.ts', ranges: [[20800, 20802]], what: 'bare nodes: two masters and a replica' },
  {
    file: 'test/e2e/node-logs.test.ts',
    ranges: [
      [21420, 21425],
      [21519, 21519],
    ],
    what: 'sandbox 3x1, its sshd 21519',
  },
  { file: 'test/integration/node-log-source.test.ts', ranges: [[21430, 21433]], what: 'standalone servers' },
  {
    file: 'test/integration/verify-digest-servers.test.ts',
    ranges: [[17350, 17351]],
    what: 'two standalone servers of a pair of builds, one pair at a time',
  },
  {
    file: 'test/e2e/plan-markdown.test.ts',
    ranges: [
      [21010, 21015],
      [21109, 21119],
    ],
    what: 'source 3x1, sshd 21109, target 5x1 (21000-21005 and 21100-21103 are multihost-sandbox bus ports)',
  },
  {
    file: 'test/e2e/watch-status.test.ts',
    ranges: [
      [21610, 21615],
      [21710, 21715],
      [21790, 21790],
    ],
    what: "source 3x1, target 3x1; 21790: the run's --metrics-addr",
  },
  {
    file: 'test/e2e/run-report.test.ts',
    ranges: [
      [21210, 21215],
      [21309, 21319],
      [21350, 21355],
    ],
    what: 'consolidate-reshard: source 3x1, sshd 21309, target 5x1; failover drill: sandbox 3x1',
  },
];

/**
 * Files that share ports today. Each pair is a finding to fix (give one of the files ports of its
 * own, then delete its pair here), not a precedent: the unit test fails on any other overlap, and
 * on a pair listed here that no longer overlaps.
 */
export const KNOWN_OVERLAPS: ReadonlyArray<{ files: readonly [string, string]; why: string }> = [];
