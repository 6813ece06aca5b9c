import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { ClusterPool } from '../../src/redis/connect.js';
import { refusesConnections } from '../../src/redis/node-state.js';

// Port 15690: a listening socket whose accept queue is full, so a connect to it gets no
// SYN-ACK and times out, as when a lossy link drops the SYN or a stopped node's refusal.
const PORT = 15690;
const children: ChildProcess[] = [];
const sockets: Socket[] = [];
after(() => {
  for (const s of sockets) s.destroy();
  for (const c of children) c.kill('SIGKILL');
});

/** A listener that never accepts (Node's net.Server always does), its queue filled: connects hang. */
async function stall(): Promise<ChildProcess> {
  const c = spawn(
    'python3',
    [
      '-c',
      `import socket,sys\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('127.0.0.1',${PORT}))\ns.listen(1)\nprint('ready',flush=True)\nsys.stdin.read()`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  children.push(c);
  await new Promise((r) => c.stdout!.once('data', r));
  // Backlog 1 holds two handshaken connections; the next SYN is dropped.
  for (let i = 0; i < 2; i++) {
    const s = connect(PORT, '127.0.0.1');
    s.on('error', () => {});
    sockets.push(s);
    await new Promise((r) => s.once('connect', r));
  }
  const probe = connect(PORT, '127.0.0.1');
  probe.on('error', () => {});
  const stalled = await new Promise<boolean>((r) => {
    probe.once('connect', () => r(false));
    setTimeout(() => r(true), 300);
  });
  probe.destroy();
  assert.ok(stalled, 'the rig: a connect to the full accept queue hangs');
  return c;
}

test('a stopped node whose first probe times out (refusal lost on the way) is still found to refuse connections', async () => {
  const c = await stall();
  const pool = new ClusterPool({ name: 'target', seeds: [] }, { access: 'read-only', connectTimeoutMs: 400 });
  try {
    const verdict = refusesConnections(pool, `127.0.0.1:${PORT}`);
    // The first probe is under way and unanswered; then the port closes (the node is stopped).
    await new Promise((r) => setTimeout(r, 200));
    c.kill('SIGKILL');
    await new Promise((r) => c.once('exit', r));
    for (const s of sockets.splice(0)) s.destroy();
    assert.equal(await verdict, true);
  } finally {
    await pool.close();
  }
});

test('a node that never answers is not taken for stopped (its files stay untouched)', async () => {
  await stall();
  const pool = new ClusterPool({ name: 'target', seeds: [] }, { access: 'read-only', connectTimeoutMs: 300 });
  try {
    const started = Date.now();
    assert.equal(await refusesConnections(pool, `127.0.0.1:${PORT}`), false);
    assert.ok(Date.now() - started >= 800, 'asked more than once before concluding');
  } finally {
    await pool.close();
  }
});
