/**
 * RedisStore when Redis fails: calls reject with store_unavailable instead of waiting,
 * recover after a restart, and Redis killed at random moments under load leaves every
 * acknowledged request in exactly one consistent place.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RuntimeRef } from '../../stores/domain.js';
import { StoreError } from '../../stores/errors.js';
import { runtimeKeys } from '../../stores/keys.js';
import { RedisStore } from '../../stores/redis/store.js';
import { RedisServer, uniquePrefix } from '../helpers/redis.js';

const RT: RuntimeRef = { workspace: 'acme', runtime: 'laptop' };

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (e: unknown) => (e instanceof StoreError ? e.code : `untyped: ${String(e)}`),
  );
}

/** Waits until the store answers again after a restart (ioredis reconnects by itself). */
async function untilReachable(store: RedisStore): Promise<void> {
  await expect.poll(() => codeOf(store.ping()), { timeout: 10_000, interval: 50 }).toBe('ok');
}

describe('RedisStore faults', () => {
  let server: RedisServer;
  beforeAll(async () => {
    // SIGKILL is a crash: with `appendfsync everysec` Redis may postpone writing its log
    // while a background fsync runs, and lose acknowledged writes. `always` does not.
    server = await RedisServer.start({ appendonly: true, extraArgs: ['--appendfsync', 'always'] });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('rejects every call with store_unavailable while Redis is down, then recovers', async () => {
    const store = await RedisStore.connect(
      { url: server.url, commandTimeoutMs: 500 },
      { prefix: uniquePrefix() },
    );
    const { request } = await store.create(RT, { kind: 'k' }, { createdBy: 'u' });
    await server.kill();
    const calls = [
      store.create(RT, { kind: 'k' }, { createdBy: 'u' }),
      store.get(RT, request.id),
      store.claim(RT, { connectionId: 'c', nodeId: 'n', max: 1 }),
      store.report(RT, request.id, 1, { status: 'completed', result: 1 }),
      store.cancel(RT, request.id),
      store.expire(RT),
      store.listRuntimes('acme'),
      store.ping(),
    ];
    const codes = await Promise.race([
      Promise.all(calls.map(codeOf)),
      new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5_000)),
    ]);
    expect(codes).toEqual(Array(calls.length).fill('store_unavailable'));

    await server.restart();
    await untilReachable(store);
    expect((await store.get(RT, request.id))?.status).toBe('pending'); // AOF kept it
    const [claimed] = await store.claim(RT, { connectionId: 'c', nodeId: 'n', max: 1 });
    expect(claimed?.id).toBe(request.id);
    await store.close();
  });

  it('loses nothing when Redis is killed at random moments during claims', async () => {
    const prefix = uniquePrefix();
    const settings = { prefix, leaseMs: 60_000, pendingTimeoutMs: 600_000 };
    const stores = await Promise.all(
      Array.from({ length: 4 }, () =>
        RedisStore.connect({ url: server.url, commandTimeoutMs: 500 }, settings),
      ),
    );
    const accepted = new Set<string>();
    const completed = new Set<string>();
    let stop = false;
    let kills = 0;
    let failures = 0;

    const producer = async (store: RedisStore) => {
      for (let i = 0; !stop; i++) {
        try {
          const { request } = await store.create(RT, { kind: 'k', payload: i }, { createdBy: 'u' });
          accepted.add(request.id);
        } catch {
          failures++;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    };
    const worker = async (store: RedisStore, n: number) => {
      while (!stop) {
        try {
          const claimed = await store.claim(RT, { connectionId: `c${n}`, nodeId: `n${n}`, max: 5 });
          for (const r of claimed) {
            await store.report(RT, r.id, r.epoch, { status: 'completed', result: n });
            completed.add(r.id);
          }
          if (claimed.length === 0) await new Promise((r) => setTimeout(r, 5));
        } catch {
          failures++;
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    };
    const chaos = async () => {
      for (let round = 0; round < 6; round++) {
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 300));
        await server.kill();
        kills++;
        await server.restart();
      }
      await untilReachable(stores[0]!);
      await new Promise((r) => setTimeout(r, 200));
      stop = true;
    };
    await Promise.all([
      producer(stores[0]!),
      producer(stores[1]!),
      worker(stores[2]!, 2),
      worker(stores[3]!, 3),
      chaos(),
    ]);
    for (const s of stores) await untilReachable(s);

    // Every acknowledged create is pending, running with a lease, or terminal, and sits
    // in exactly the index its status calls for.
    const redis = server.client();
    const keys = runtimeKeys(prefix, RT);
    const [pending, leases, done, ids] = await Promise.all(
      [keys.pending, keys.leases, keys.done, keys.ids].map((k) => redis.zrange(k, 0, -1)),
    );
    const inPending = new Set(pending);
    const inLeases = new Set(leases);
    const inDone = new Set(done);
    const inIds = new Set(ids);
    const problems: string[] = [];
    for (const id of accepted) {
      const [status, lease] = await redis.hmget(keys.record(id), 'status', 'lease_expires_at');
      const places = [inPending.has(id), inLeases.has(id), inDone.has(id)].filter(Boolean).length;
      const ok =
        inIds.has(id) &&
        places === 1 &&
        ((status === 'pending' && inPending.has(id)) ||
          (status === 'running' && inLeases.has(id) && lease !== null) ||
          (status === 'completed' && inDone.has(id)));
      if (!ok) problems.push(`${id}: status=${status} places=${places}`);
    }
    for (const id of completed) {
      expect(await redis.hget(keys.record(id), 'status')).toBe('completed');
    }
    console.info(
      `faults: ${accepted.size} accepted, ${completed.size} completed, ${kills} kills, ${failures} rejected calls`,
    );
    expect(problems).toEqual([]);
    expect(kills).toBe(6);
    expect(accepted.size).toBeGreaterThan(50);
    await Promise.all(stores.map((s) => s.close()));
  });

  it('enforces timeouts on Redis TIME when no clock is injected', async () => {
    const store = await RedisStore.connect({ url: server.url }, { prefix: uniquePrefix() });
    const { request } = await store.create(
      RT,
      { kind: 'k', pending_timeout_ms: 50 },
      { createdBy: 'u' },
    );
    expect(request.pending_deadline! - request.created_at).toBe(50);
    await expect
      .poll(async () => (await store.expire(RT)).timedOut, { timeout: 5_000, interval: 20 })
      .toEqual([request.id]);
    expect((await store.get(RT, request.id))?.error?.code).toBe('pending_timeout');
    await store.close();
  });
});
