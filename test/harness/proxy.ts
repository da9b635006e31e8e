import net from 'node:net';

/**
 * A TCP proxy on localhost between the target's subscription and the source, for "the network
 * between them drops for a while": `cut(ms)` destroys every connection and refuses new ones for
 * that long.
 */
export interface Proxy {
  port: number;
  cut(ms: number): void;
  /** Stop passing bytes either way, keeping every connection open (a stream that stands still). */
  freeze(): void;
  /** Pass bytes again, everything held back first. */
  thaw(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<Proxy> {
  const sockets = new Set<net.Socket>();
  let downUntil = 0;
  let frozen = false;
  const server = net.createServer((client) => {
    if (Date.now() < downUntil) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
    if (frozen) {
      client.pause();
      upstream.pause();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut(ms: number) {
      downUntil = Date.now() + ms;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    freeze() {
      frozen = true;
      for (const s of sockets) s.pause();
    },
    thaw() {
      frozen = false;
      for (const s of sockets) s.resume();
    },
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
