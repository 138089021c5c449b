/**
 * Graceful shutdown: a draining node tells its daemons to move, they report what they
 * hold on other nodes (leases survive the move), nothing is lost or completed twice; and
 * a real `switchboard serve` process drains and exits 0 on a real SIGTERM.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  clientToken,
  daemonToken,
  FrameSocket,
  readyDaemon,
  SECRET,
  startTestNode,
} from '../helpers/node.js';
import { freePort, RedisServer } from '../helpers/redis.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CAPACITY = 2;

/**
 * A daemon with capacity 2 that works 5-20 ms per request (simulated work), except that
 * requests with `payload.slow` are held until it has moved to another node. On `drain` it
 * opens a socket on `next`, sends ready there and reports everything from then on over
 * it; it never closes the old socket itself.
 */
class RoamingDaemon {
  readonly sockets: FrameSocket[] = [];
  readonly deliveries = new Map<string, number>(); // id@epoch -> request frames
  readonly acks = new Map<string, number>(); // id -> acks
  readonly nacks: unknown[] = [];
  readonly slowHeld: { id: string; epoch: number }[] = [];
  readonly reportedOn = new Map<string, string>(); // id -> url of the socket it went on
  #current!: FrameSocket;
  #moved = false;

  constructor(
    readonly token: string,
    readonly next: { url: string },
    readonly onFrame: () => void,
  ) {}

  async connect(node: { url: string }): Promise<void> {
    const s = await FrameSocket.daemon(node, this.token);
    s.ws.on('message', (data) => this.#onMessage(JSON.parse(data.toString())));
    await s.next('hello');
    this.sockets.push(s);
    this.#current = s;
    s.send({ type: 'ready', capacity: CAPACITY });
  }

  #onMessage(f: { type: string; [k: string]: any }): void {
    if (f.type === 'request') {
      const { id, epoch, payload } = f.request;
      const key = `${id}@${epoch}`;
      this.deliveries.set(key, (this.deliveries.get(key) ?? 0) + 1);
      if (payload.slow && !this.#moved) this.slowHeld.push({ id, epoch });
      else setTimeout(() => this.#report(id, epoch), 5 + Math.random() * 15);
    } else if (f.type === 'ack') {
      this.acks.set(f.id, (this.acks.get(f.id) ?? 0) + 1);
    } else if (f.type === 'nack') {
      this.nacks.push(f);
    } else if (f.type === 'drain') {
      void this.connect(this.next).then(() => {
        this.#moved = true;
        for (const { id, epoch } of this.slowHeld) this.#report(id, epoch);
      });
    }
    this.onFrame();
  }

  #report(id: string, epoch: number): void {
    const s = this.#current;
    this.reportedOn.set(id, s.ws.url);
    s.send({ type: 'result', id, epoch, status: 'completed', result: { id } });
  }
}

describe('shutdown', () => {
  let server: RedisServer;
  let client: string;

  beforeAll(async () => {
    server = await RedisServer.start();
    client = await clientToken();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('drains a node: daemons move, every request completes exactly once', async () => {
    const env = { REDIS_URL: server.url, SHUTDOWN_GRACE_MS: '1000' };
    const start = (n: string) => startTestNode({ ...env, NODE_ID: `node-${n}` });
    const [a, b, c] = await Promise.all([start('a'), start('b'), start('c')]);
    try {
      const token = await daemonToken('pool');
      let check = () => {};
      const daemons = [b, c, b].map((next) => new RoamingDaemon(token, next, () => check()));
      await Promise.all(daemons.map((d) => d.connect(a)));

      // 50 requests over nodes B and C; three of them are held by their daemon until it
      // has moved, so some leases granted on node A are certainly reported elsewhere.
      const slow = new Set([7, 23, 41]);
      const created = await Promise.all(
        Array.from({ length: 50 }, (_, n) =>
          api(n % 2 ? b : c, 'POST', '/v1/runtimes/pool/requests', {
            token: client,
            body: { kind: 'job', payload: { n, slow: slow.has(n) } },
          }),
        ),
      );
      expect(created.map((r) => r.status)).toEqual(Array(50).fill(201));
      const ids = created.map((r) => r.body.id as string);
      const slowIds = new Set([...slow].map((n) => ids[n]));

      // Close node A once the slow ones are held and at least 10 results are acked.
      const acked = () => daemons.reduce((sum, d) => sum + d.acks.size, 0);
      await new Promise<void>((resolve) => {
        check = () => {
          if (daemons.flatMap((d) => d.slowHeld).length === slow.size && acked() >= 10) resolve();
        };
        check();
      });
      const oldSockets = daemons.map((d) => d.sockets[0]!);
      const closing = a.close();

      const drains = await Promise.all(oldSockets.map((s) => s.next('drain')));
      for (const drain of drains)
        expect(drain).toMatchObject({ type: 'drain', reason: expect.any(String) });
      // Not ready while draining: 503, or no longer accepting connections at all.
      const readyz = await fetch(`${a.url}/readyz`).then(
        (r) => r.status,
        () => 'refused',
      );
      expect([503, 'refused']).toContain(readyz);
      expect(await a.hub.ready()).toMatchObject({ ok: false, checks: { draining: true } });

      const closes = await Promise.all(oldSockets.map((s) => s.closed));
      expect(closes.map((x) => x.code)).toEqual([1012, 1012, 1012]);
      await closing;

      await expect
        .poll(
          async () => {
            const list = await api(
              b,
              'GET',
              '/v1/runtimes/pool/requests?status=completed&limit=500',
              {
                token: client,
              },
            );
            return new Set(list.body.requests.map((r: { id: string }) => r.id));
          },
          { timeout: 15_000, interval: 100 },
        )
        .toEqual(new Set(ids));

      // Exactly one ack per id across all daemons, no nack, no id+epoch delivered twice.
      await expect.poll(acked, { timeout: 5000 }).toBe(50);
      const acks = new Map<string, number>();
      for (const d of daemons) for (const [id, n] of d.acks) acks.set(id, (acks.get(id) ?? 0) + n);
      expect([...acks.keys()].sort()).toEqual([...ids].sort());
      expect([...acks.values()].every((n) => n === 1)).toBe(true);
      expect(daemons.flatMap((d) => d.nacks)).toEqual([]);
      const deliveries = daemons.flatMap((d) => [...d.deliveries]);
      expect(deliveries.filter(([, n]) => n > 1)).toEqual([]);
      expect(new Set(deliveries.map(([key]) => key)).size).toBe(deliveries.length);
      // The held requests were granted by node A and accepted from a socket on B or C.
      for (const d of daemons) {
        expect(d.sockets).toHaveLength(2);
        for (const { id } of d.slowHeld) expect(d.reportedOn.get(id)).toBe(d.sockets[1]!.ws.url);
      }
      expect(daemons.flatMap((d) => d.slowHeld.map((h) => h.id)).sort()).toEqual(
        [...slowIds].sort(),
      );
      for (const d of daemons) await d.sockets[1]!.close();
    } finally {
      await Promise.all([a, b, c].map((n) => n.kill()));
    }
  });

  it('drains and exits 0 on a real SIGTERM', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve'], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        REDIS_URL: server.url,
        HUB_SECRET: SECRET,
        LOG_LEVEL: 'silent',
        SHUTDOWN_GRACE_MS: '2000',
        NODE_ID: 'sigterm-node',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    try {
      await expect
        .poll(
          () =>
            fetch(`${url}/healthz`).then(
              (r) => r.status,
              () => child.exitCode ?? 0,
            ),
          {
            timeout: 20_000,
            interval: 100,
          },
        )
        .toBe(200);
      const d = await readyDaemon({ url }, await daemonToken('sigterm'), 1);

      const sentAt = Date.now();
      expect(child.kill('SIGTERM')).toBe(true);
      expect(await d.next('drain')).toMatchObject({ type: 'drain', reason: expect.any(String) });
      expect((await d.closed).code).toBe(1012);
      const exit = await Promise.race([
        exited,
        new Promise<never>((_, reject) =>
          setTimeout(
            () => reject(new Error(`no exit within 15 s; stderr: ${stderr}`)),
            15_000,
          ).unref(),
        ),
      ]);
      expect(exit, stderr).toEqual({ code: 0, signal: null });
      expect(Date.now() - sentAt).toBeLessThan(2000 + 5000); // the grace, plus slack
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
  });
});
