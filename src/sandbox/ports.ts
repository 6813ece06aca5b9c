import { createConnection, createServer } from 'node:net';

const HOST = '127.0.0.1';

/**
 * Can a node bind this port? Binding is the only honest test: something may
 * hold the port without accepting connections, which a connect probe would miss.
 */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.once('error', () => resolvePromise(false));
    server.listen({ host: HOST, port, exclusive: true }, () => {
      server.close(() => resolvePromise(true));
    });
  });
}

/** Does something accept TCP connections on the port? Bounded by timeoutMs. */
export function isListening(port: number, timeoutMs = 1000, host = HOST): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = createConnection({ host, port });
    const done = (open: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolvePromise(open);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
