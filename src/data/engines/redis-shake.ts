import { accessSync, constants } from 'node:fs';
import { preconditionError } from '../../errors.js';
import type { ClusterConfig } from '../../inventory/types.js';

/**
 * RedisShake as an alternative sync engine: its configuration,
 * written from the inventory, and its log, read back as phases and progress.
 * The binary is the operator's (it cannot be downloaded here); this module
 * never ships or fetches one. The config holds the passwords RedisShake
 * needs: the caller writes it mode 0600 into a private directory and deletes
 * it when the sync stops, and never prints it.
 */
export interface ShakeSide {
  cluster: boolean;
  /** host:port of the nodes (v4 takes one seed of a cluster; v2 takes every master). */
  addresses: string[];
  username?: string;
  password?: string;
  tls: boolean;
}

/**
 * The `tls` value of one side of RedisShake's config. RedisShake's `tls =
 * true` encrypts but accepts any server certificate (InsecureSkipVerify) and
 * presents no client certificate: a cluster whose inventory asks for
 * verification or a client certificate is refused rather than given a
 * weaker link than the inventory promises. A cluster without `tls:` gets
 * false, one with `tls: { verify: false }` true.
 */
export function shakeTls(c: ClusterConfig): boolean {
  if (!c.tls) return false;
  const wants = [
    c.tls.verify ? 'the server certificate verified' : '',
    c.tls.cert || c.tls.key ? 'a client certificate' : '',
  ].filter(Boolean);
  if (wants.length) {
    throw preconditionError(
      'E_SHAKE_TLS',
      `clusters.${c.name}.tls asks for ${wants.join(' and ')}, which RedisShake's \`tls = true\` does not do (it accepts any certificate and presents none)`,
      "use engine=builtin, which honours the inventory's ca, cert, key, servername and verify",
    );
  }
  return true;
}

const q = (s: string) => JSON.stringify(s); // TOML basic strings escape like JSON for what we write

/** RedisShake v4 (shake.toml): a sync_reader and a redis_writer; existing keys are replaced. */
export function shakeConfigV4(o: {
  source: ShakeSide;
  target: ShakeSide;
  dir: string;
  logFile: string;
  /** Its HTTP status port (JSON: phase, offsets, `consistent`); 0 turns it off. */
  statusPort?: number;
}): string {
  // v4.2+ runs the file through envsubst: a `$` in a value would be replaced.
  for (const v of [o.source.password, o.target.password, o.dir, o.logFile, o.source.username, o.target.username]) {
    if (v?.includes('$'))
      throw new Error(
        'a value of the RedisShake config contains `$`, which RedisShake 4.2+ expands as an environment variable: use engine=builtin for it',
      );
  }
  // log_file is joined onto dir by RedisShake: a bare name.
  const logFile = o.logFile.split('/').pop()!;
  const side = (s: ShakeSide) => [
    `cluster = ${s.cluster}`,
    `address = ${q(s.addresses[0] ?? '')}`,
    `username = ${q(s.username ?? '')}`,
    `password = ${q(s.password ?? '')}`,
    `tls = ${s.tls}`,
  ];
  return [
    '# written by redis-runbook; holds passwords: mode 0600, deleted when the sync stops',
    '[sync_reader]',
    ...side(o.source),
    'sync_rdb = true',
    'sync_aof = true',
    '',
    '[redis_writer]',
    ...side(o.target),
    '',
    '[advanced]',
    `dir = ${q(o.dir)}`,
    `log_file = ${q(logFile)}`,
    'log_level = "info"',
    'log_interval = 1',
    // v4.2.0 listens on every interface (":port"); what it serves holds addresses and counters, no secrets.
    `status_port = ${o.statusPort ?? 0}`,
    // v4.2.0's sync reader writes the RDB as type commands (HSET, RPUSH, XADD...), not RESTORE: this
    // setting only covers a RESTORE. An existing key would be merged into (or refuse an XADD), so
    // the session empties the target first; "rewrite" stays as the safe value should a key arrive twice.
    'rdb_restore_command_behavior = "rewrite"',
    '',
  ].join('\n');
}

/** RedisShake v2 (redis-shake.conf), the format the field guide shows. */
export function shakeConfigV2(o: { source: ShakeSide; target: ShakeSide; logFile: string }): string {
  const side = (name: string, s: ShakeSide) => [
    `${name}.type = ${s.cluster ? 'cluster' : 'standalone'}`,
    `${name}.address = ${s.addresses.join(';')}`,
    `${name}.auth_type = auth`,
    `${name}.password_raw = ${s.password ?? ''}`,
    `${name}.tls_enable = ${s.tls}`,
  ];
  return [
    '# written by redis-runbook; holds passwords: mode 0600, deleted when the sync stops',
    'conf.version = 1',
    'id = redis-shake',
    `log.file = ${o.logFile}`,
    'log.level = info',
    ...side('source', o.source),
    ...side('target', o.target),
    'key_exists = rewrite',
    '',
  ].join('\n');
}

export type ShakePhase = 'handshake' | 'saving' | 'receiving' | 'full' | 'incremental';

export interface ShakeStatus {
  phase?: ShakePhase;
  /** Full sync: percent of the RDB sent. */
  percent?: number;
  /** Incremental: bytes received from the source but not yet written (v4 `diff`). */
  diff?: number;
  writeOps?: number;
  error?: string;
}

const V4_STATE: Record<string, ShakePhase> = {
  'hand shaking': 'handshake',
  'waiting bgsave': 'saving',
  'receiving rdb': 'receiving',
  'syncing rdb': 'full',
  'syncing aof': 'incremental',
};
const UNITS: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
};
const bytes = (s: string) => {
  const m = /^([\d.]+)\s*([A-Za-z]*)$/.exec(s.trim());
  return m ? Number(m[1]) * (UNITS[m[2] || 'B'] ?? 1) : NaN;
};

/**
 * One line of RedisShake's log, as a status; undefined when it says nothing
 * about progress. v4 (cmd/redis-shake/main.go + reader StatusString):
 * `read_count=[n], read_ops=[x], write_count=[n], write_ops=[x], src-0, syncing rdb, size=[1.0 MiB/4.0 MiB]`
 * and `..., syncing aof, diff=[0]`. v2: `dbSyncer[0] total = 1.00MB - 4.00MB [ 25%]` and
 * `dbSyncer[0] sync rdb done`. Panics and errors are reported as such.
 */
export function parseShakeLine(raw: string): ShakeStatus | undefined {
  // Its console output is coloured (zerolog's ConsoleWriter): `\x1b[31mERR\x1b[0m`.
  let line = raw.replace(/\x1b\[[0-9;]*m/g, '');
  // v4's log file holds JSON lines: {"level":"error","time":...,"message":"..."}.
  if (line.startsWith('{')) {
    try {
      const j = JSON.parse(line) as { level?: string; message?: string };
      if (typeof j.message === 'string') {
        if (/^(error|fatal|panic)$/.test(j.level ?? '')) return { error: j.message.trim() };
        line = j.message;
      }
    } catch {
      // not JSON after all: read as text
    }
  }
  // v4's log.Panicf logs at error level (zerolog prints ERR) and exits; v2 prints [PANIC].
  if (/\b(ERR|PNC|PANIC|FTL|FATAL)\b|\[PANIC\]|\[ERROR\]|panic:/.test(line))
    return { error: line.replace(/^.*?(ERR|PNC|PANIC\]?|ERROR\]|FTL|panic:)\s*/, '').trim() || line.trim() };
  const v4 =
    /(?:src-\d+, )?(hand shaking|waiting bgsave|receiving rdb|syncing rdb|syncing aof)(?:, size=\[([^/\]]+)\/([^\]]+)\])?(?:, diff=\[(-?\d+)\])?/.exec(
      line,
    );
  if (v4) {
    const st: ShakeStatus = { phase: V4_STATE[v4[1]!] };
    if (v4[2] && v4[3]) {
      const [a, b] = [bytes(v4[2]), bytes(v4[3])];
      if (b > 0) st.percent = Math.min(100, Math.round((a / b) * 1000) / 10);
    }
    if (v4[4] !== undefined) st.diff = Number(v4[4]);
    const ops = /write_ops=\[([\d.]+)\]/.exec(line);
    if (ops) st.writeOps = Number(ops[1]);
    return st;
  }
  if (/sync rdb done/.test(line)) return { phase: 'incremental' };
  const v2 = /total\s*=\s*([\d.]+\s*[A-Za-z]*)\s*-\s*([\d.]+\s*[A-Za-z]*)\s*\[\s*(\d+)%\]/.exec(line);
  if (v2) return { phase: 'full', percent: Number(v2[3]) };
  if (/waiting source rdb|wait source rdb|source rdb/.test(line)) return { phase: 'saving' };
  return undefined;
}

/** One reader of v4's status JSON (internal/reader/sync_standalone_reader.go `stat`). */
interface V4Reader {
  address?: string;
  status?: string;
  rdb_file_size_bytes?: number;
  rdb_sent_bytes?: number;
  aof_received_offset?: number;
  aof_sent_offset?: number;
  aof_received_bytes?: number;
}

export interface ShakeStatusPage {
  /** v4's own verdict: every reader past the RDB with nothing received left unsent, every writer answered. */
  consistent: boolean;
  /** One per source master (a cluster source), in v4's src-N order; one for a standalone source. */
  readers: Array<ShakeStatus & { address?: string; receivedOffset?: number; sentOffset?: number }>;
  /** Commands sent to the target and not yet answered (every writer). */
  unanswered?: number;
}

/**
 * v4's status port (GET /, JSON): per reader its state, RDB bytes sent of
 * the RDB's size and the replication offsets received and sent; per writer
 * the commands not yet answered; and `consistent`. Undefined for anything
 * that is not that page.
 */
export function parseShakeStatus(body: string): ShakeStatusPage | undefined {
  let j: { consistent?: unknown; reader?: unknown; writer?: unknown };
  try {
    j = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!j || typeof j !== 'object' || typeof j.consistent !== 'boolean') return undefined;
  const list = (x: unknown) => (Array.isArray(x) ? x : x && typeof x === 'object' ? [x] : []);
  const readers = (list(j.reader) as V4Reader[]).map((r) => {
    const st: ShakeStatusPage['readers'][number] = { address: r.address, phase: V4_STATE[r.status ?? ''] };
    if (r.rdb_file_size_bytes && r.rdb_sent_bytes !== undefined)
      st.percent = Math.min(100, Math.round((r.rdb_sent_bytes / r.rdb_file_size_bytes) * 1000) / 10);
    // Until it passes on its first command its sent offset is 0 while the received one starts at the
    // +FULLRESYNC offset: then what it received since (aof_received_bytes) is what is behind.
    if (st.phase === 'incremental' && r.aof_received_offset !== undefined && r.aof_sent_offset !== undefined)
      st.diff = r.aof_sent_offset ? r.aof_received_offset - r.aof_sent_offset : (r.aof_received_bytes ?? 0);
    // In the source's replication offsets (v4 starts counting at the offset of +FULLRESYNC).
    st.receivedOffset = r.aof_received_offset;
    st.sentOffset = r.aof_sent_offset;
    return st;
  });
  const writers = list(j.writer) as Array<{ unanswered_entries?: number }>;
  const unanswered = writers.reduce((n, w) => n + (w.unanswered_entries ?? 0), 0);
  return { consistent: j.consistent, readers, unanswered };
}

/** The binary the operator gave, checked before anything starts. */
export function checkShakeBinary(path: string | undefined): string {
  if (!path)
    throw preconditionError(
      'E_SHAKE_MISSING',
      'engine=redis-shake needs the RedisShake binary',
      'download redis-shake on a machine that can, copy it here, and pass --param shakeBinary=/path/to/redis-shake (or use engine=builtin)',
    );
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw preconditionError(
      'E_SHAKE_MISSING',
      `${path} is not an executable file`,
      'pass --param shakeBinary= the path of the redis-shake binary (chmod +x it), or use engine=builtin',
    );
  }
  return path;
}
