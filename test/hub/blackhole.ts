/**
 * A TCP proxy in front of one Redis, for partition tests: `blackHole()` holds every byte
 * in both directions with no connection closed (a dead link, as a firewall or a lost
 * route makes it), `pass()` lets the held bytes through again, `cut()` destroys every
 * connection (new ones pass). The bytes the node sent are recorded, so a test can wait
 * until a command is in flight.
 */
import type { AddressInfo } from 'node:net';
import net from 'node:net';

interface Link {
  client: net.Socket;
  upstream: net.Socket;
  /** Bytes held while black-holed, per direction, forwarded by `pass()`. */
  up: Buffer[];
  down: Buffer[];
}

export class BlackHoleProxy {
  #holding = false;
  readonly #links = new Set<Link>();
  /** Text the node sent (commands), capped, newest last. */
  sent = '';

  private constructor(
    private readonly server: net.Server,
    private readonly target: number,
  ) {}

  static async start(targetPort: number): Promise<BlackHoleProxy> {
    const server = net.createServer();
    const proxy = new BlackHoleProxy(server, targetPort);
    server.on('connection', (client) => proxy.#accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  #accept(client: net.Socket): void {
    const upstream = net.connect(this.target, '127.0.0.1');
    const link: Link = { client, upstream, up: [], down: [] };
    this.#links.add(link);
    client.on('data', (chunk) => {
      this.sent = (this.sent + chunk.toString('latin1')).slice(-65_536);
      if (this.#holding) link.up.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (this.#holding) link.down.push(chunk);
      else client.write(chunk);
    });
    const drop = () => {
      this.#links.delete(link);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  }

  /** Holds every byte, on existing connections and on new ones; nothing is closed. */
  blackHole(): void {
    this.#holding = true;
  }

  /** Lets held bytes (in order) and new ones through again. */
  pass(): void {
    this.#holding = false;
    for (const link of this.#links) {
      for (const chunk of link.up.splice(0)) link.upstream.write(chunk);
      for (const chunk of link.down.splice(0)) link.client.write(chunk);
    }
  }

  /** Destroys every connection; from now on connections pass. */
  cut(): void {
    this.#holding = false;
    for (const link of [...this.#links]) {
      link.client.destroy();
      link.upstream.destroy();
    }
    this.#links.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
