/** A real MQTT broker (aedes) on 127.0.0.1, for tests that need the wire, not a fake. */
import { Aedes } from 'aedes';
import { createServer, type Server, type Socket } from 'node:net';

export interface MqttBroker {
  port: number;
  url: string;
  aedes: Aedes;
  /** Stops the broker; connected clients see their connection drop at once. Idempotent. */
  stop(): Promise<void>;
}

/** Starts a broker on `port` (default 0: a random free port). */
export async function startBroker(opts: { port?: number } = {}): Promise<MqttBroker> {
  const aedes = await Aedes.createBroker();
  const server: Server = createServer(aedes.handle);
  // server.close() alone would wait for clients to leave; a stopped broker must drop them like a crash.
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  let stopped: Promise<void> | null = null;
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    aedes,
    stop: () => {
      stopped ??= (async () => {
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
      })();
      return stopped;
    },
  };
}

export { freePort } from './http-json.js';
