import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * Added latency without netem (this kernel has none): a TCP proxy on
 * 127.0.0.1 that holds every chunk `delayMs` before passing it on, in both
 * directions and in order. A node reached through it (its announced port is
 * the proxy's) is a node on a link with that much one-way delay.
 */
export interface DelayProxy {
  port: number;
  chunks: number;
  close(): Promise<void>;
}

export async function delayProxy(listenPort: number, targetPort: number, delayMs: number): Promise<DelayProxy> {
  const sockets = new Set<Socket>();
  const state = { chunks: 0 };
  // Chunks are passed on by timers of equal length, which fire in the order they were set.
  const forward = (from: Socket, to: Socket) => {
    from.on('data', (chunk) => {
      state.chunks++;
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, delayMs);
    });
    // A half-close is passed on as one (after the data before it); only an error tears the other side down.
    from.on('end', () => setTimeout(() => to.end(), delayMs));
    from.on('error', () => setTimeout(() => to.destroy(), delayMs));
  };
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => resolve());
  });
  return {
    port: listenPort,
    get chunks() {
      return state.chunks;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
