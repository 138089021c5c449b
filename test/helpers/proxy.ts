/**
 * Proxies for tests that need a network path the test can change.
 *
 * `HttpProxy`: a small HTTP reverse proxy in front of one node: websocket upgrades can be
 * refused (a corporate proxy that only passes plain HTTP) or passed through, and the
 * websocket frames that pass through can be watched (read-only: every byte is forwarded
 * as it came).
 *
 * `TcpProxy`: a plain TCP relay (in front of a node, or between a node and Redis) that
 * can cut every connection (RST) or black-hole them: hold every byte, both ways, and
 * close nothing, as a dead route or a stalled middlebox does, until healed or cut.
 */
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import type { Duplex } from 'node:stream';

/** `server`: from the node to the websocket client; `client`: the other way. */
export type FrameSource = 'server' | 'client';
export type Frame = { type: string; [k: string]: any };

export class HttpProxy {
  /** When true, every websocket upgrade is answered `503 Service Unavailable`. */
  refuseUpgrades = false;
  refusedUpgrades = 0;
  proxiedUpgrades = 0;
  /**
   * When set, each plain HTTP response is read whole and handed to this hook before it is
   * passed on; a promise returned holds the response until it settles (a slow network,
   * on cue).
   */
  beforeResponse: ((req: IncomingMessage, body: Buffer) => Promise<unknown> | undefined) | null =
    null;
  /** Text frames seen on proxied websockets, in arrival order. */
  readonly frames: { from: FrameSource; frame: Frame }[] = [];

  readonly #server: http.Server;
  readonly #agent = new http.Agent({ keepAlive: true });
  readonly #tunnels = new Set<Duplex>();
  readonly #target: { host: string; port: number };

  private constructor(target: string) {
    const url = new URL(target);
    this.#target = { host: url.hostname, port: Number(url.port) };
    this.#server = http.createServer((req, res) => this.#forward(req, res));
    this.#server.on('upgrade', (req, socket, head) => this.#upgrade(req, socket, head));
  }

  static async start(target: string, opts: { refuseUpgrades?: boolean } = {}) {
    const proxy = new HttpProxy(target);
    proxy.refuseUpgrades = opts.refuseUpgrades ?? false;
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Frames of a type seen so far, optionally only from one side. */
  seen(type: string, from?: FrameSource): Frame[] {
    return this.frames
      .filter((f) => f.frame.type === type && (from === undefined || f.from === from))
      .map((f) => f.frame);
  }

  async close(): Promise<void> {
    for (const s of this.#tunnels) s.destroy();
    this.#tunnels.clear();
    this.#server.closeAllConnections();
    this.#agent.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #forward(req: IncomingMessage, res: http.ServerResponse): void {
    const upstream = http.request(
      {
        ...this.#target,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: this.#agent,
      },
      (upRes) => {
        const hook = this.beforeResponse;
        if (!hook) {
          res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, upRes.headers);
          upRes.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        upRes.on('data', (chunk: Buffer) => chunks.push(chunk));
        upRes.on('end', async () => {
          const body = Buffer.concat(chunks);
          await hook(req, body);
          const headers = { ...upRes.headers, 'content-length': String(body.length) };
          delete headers['transfer-encoding'];
          res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, headers);
          res.end(body);
        });
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.refuseUpgrades) {
      this.refusedUpgrades++;
      socket.end(
        'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
      );
      return;
    }
    this.proxiedUpgrades++;
    const upstream = net.connect(this.#target.port, this.#target.host);
    this.#tunnels.add(socket);
    this.#tunnels.add(upstream);
    const teardown = () => {
      socket.destroy();
      upstream.destroy();
      this.#tunnels.delete(socket);
      this.#tunnels.delete(upstream);
    };
    socket.on('error', teardown);
    socket.on('close', teardown);
    upstream.on('error', teardown);
    upstream.on('close', teardown);
    upstream.once('connect', () => {
      let raw = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        raw += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      }
      upstream.write(`${raw}\r\n`);
      if (head.length > 0) upstream.write(head);
      const fromServer = frameReader(true, (f) => this.frames.push({ from: 'server', frame: f }));
      const fromClient = frameReader(false, (f) => this.frames.push({ from: 'client', frame: f }));
      if (head.length > 0) fromClient(head);
      upstream.on('data', fromServer);
      socket.on('data', fromClient);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
  }
}

/**
 * Reads websocket frames off a byte stream (after the HTTP response head when
 * `afterHead`), calling `onFrame` with each complete JSON text frame. Unfragmented,
 * uncompressed frames only (what the nodes and the SDK exchange); anything else is
 * skipped.
 */
function frameReader(afterHead: boolean, onFrame: (frame: Frame) => void) {
  let buf = Buffer.alloc(0);
  let inHead = afterHead;
  let dead = false;
  return (chunk: Buffer) => {
    if (dead) return;
    buf = Buffer.concat([buf, chunk]);
    if (inHead) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!buf.subarray(0, 12).toString().startsWith('HTTP/1.1 101')) {
        dead = true; // not switched: no frames follow
        return;
      }
      buf = buf.subarray(end + 4);
      inHead = false;
    }
    for (;;) {
      if (buf.length < 2) return;
      const b0 = buf[0] as number;
      const b1 = buf[1] as number;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      const mask = masked ? buf.subarray(off, off + 4) : null;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      const payload = Buffer.from(buf.subarray(off, off + len));
      buf = buf.subarray(off + len);
      if (mask) {
        for (let i = 0; i < payload.length; i++) {
          payload[i] = (payload[i] as number) ^ (mask[i % 4] as number);
        }
      }
      const fin = (b0 & 0x80) !== 0;
      const rsv1 = (b0 & 0x40) !== 0;
      if (!fin || rsv1 || (b0 & 0x0f) !== 1) continue;
      try {
        onFrame(JSON.parse(payload.toString('utf8')) as Frame);
      } catch {
        // not JSON: not ours to read
      }
    }
  };
}

/** One relayed connection: bytes held per direction while the proxy black-holes. */
interface TcpPair {
  inbound: net.Socket;
  outbound: net.Socket;
  /** Held chunks, in order; `null` marks an end (FIN) that is held too. */
  toOutbound: (Buffer | null)[];
  toInbound: (Buffer | null)[];
}

export class TcpProxy {
  readonly #pairs = new Set<TcpPair>();
  #server: net.Server | null = null;
  #holding = false;
  port = 0;

  /** `targetPort` is read at each connection: the target may have moved. */
  constructor(private readonly targetPort: () => number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Whether bytes are being held (between `blackhole()` and `heal()`/`cut()`). */
  get blackholed(): boolean {
    return this.#holding;
  }

  async start(): Promise<void> {
    this.#server = net.createServer((inbound) => this.#relay(inbound));
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as net.AddressInfo).port;
  }

  /**
   * From now on every byte through the proxy, both ways, on open connections and on new
   * ones (still accepted), is held; nothing is closed. TCP stays up: keepalives are
   * answered by this process, so only an application-level timeout notices.
   */
  blackhole(): void {
    this.#holding = true;
  }

  /** Delivers everything held, in order, and passes bytes through again. */
  heal(): void {
    this.#holding = false;
    for (const pair of this.#pairs) {
      flush(pair.toOutbound, pair.outbound);
      flush(pair.toInbound, pair.inbound);
      // A side that closed during the hold: the other side now learns it, after the bytes.
      if (pair.inbound.destroyed) pair.outbound.end();
      if (pair.outbound.destroyed) pair.inbound.end();
    }
  }

  /**
   * Cuts every connection (RST), as a network failure would, dropping whatever was held;
   * new connections pass again. Returns how many connections were cut.
   */
  cut(): number {
    this.#holding = false;
    const n = this.#pairs.size;
    for (const pair of this.#pairs) {
      pair.inbound.resetAndDestroy();
      pair.outbound.resetAndDestroy();
    }
    this.#pairs.clear();
    return n;
  }

  /** Cuts every connection; kept for the callers that only ever cut. */
  dropAll(): number {
    return this.cut();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) =>
      this.#server ? this.#server.close(() => resolve()) : resolve(),
    );
  }

  #relay(inbound: net.Socket): void {
    const outbound = net.connect(this.targetPort(), '127.0.0.1');
    const pair: TcpPair = { inbound, outbound, toOutbound: [], toInbound: [] };
    this.#pairs.add(pair);
    const teardown = () => {
      inbound.destroy();
      outbound.destroy();
      this.#pairs.delete(pair);
    };
    const pass = (to: net.Socket, held: (Buffer | null)[]) => (chunk: Buffer | null) => {
      if (this.#holding || held.length > 0) held.push(chunk);
      else if (chunk) to.write(chunk);
      else to.end();
    };
    inbound.on('data', pass(outbound, pair.toOutbound));
    outbound.on('data', pass(inbound, pair.toInbound));
    inbound.on('end', () => pass(outbound, pair.toOutbound)(null));
    outbound.on('end', () => pass(inbound, pair.toInbound)(null));
    for (const s of [inbound, outbound]) {
      s.on('error', teardown);
      s.on('close', () => {
        // A side that closed while bytes are held stays "open" to the other side: that
        // is what a black hole looks like. Once passing, close the other side too.
        if (!this.#holding) teardown();
      });
    }
  }
}

function flush(held: (Buffer | null)[], to: net.Socket): void {
  for (const chunk of held.splice(0)) {
    if (to.destroyed) return;
    if (chunk) to.write(chunk);
    else to.end();
  }
}
