/**
 * A small HTTP reverse proxy in front of one node, for tests that need a network path
 * the test can change: websocket upgrades can be refused (a corporate proxy that only
 * passes plain HTTP) or passed through, and the websocket frames that pass through can
 * be watched (read-only: every byte is forwarded as it came).
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
