/**
 * The store-health monitor does not decide "lost" from one slow call: a link that is
 * black-holed for less than STORE_LOST_DRAIN_MS leaves the node ready and its daemons
 * where they are; the same link held past it drains them.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { StoreHealth } from '../../hub/store-health.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, daemonToken, readyDaemon } from '../helpers/node.js';
import { BlackHoleProxy } from './blackhole.js';

const { defer, redis, node } = stopAfterEach();

describe('store health', () => {
  it('a short stall is not a lost store; a long one is', async () => {
    const server = await redis();
    const proxy = await BlackHoleProxy.start(server.port);
    defer(() => proxy.close());
    const n = await node({ REDIS_URL: proxy.url, STORE_LOST_DRAIN_MS: '3000' });
    defer(async () => proxy.cut()); // before the node stops: its QUIT must not hang
    const d = await readyDaemon(n, await daemonToken('laptop'));
    defer(() => d.close());
    await expect.poll(() => n.hub.dispatcher.connections.length).toBe(1);

    // Stalled for more than a ping timeout (a fifth of the window), well inside the
    // window: at least one ping fails meanwhile, then they answer again.
    proxy.blackHole();
    await new Promise((r) => setTimeout(r, 1500)); // the length of the stall is the scenario
    proxy.pass();
    await expect.poll(async () => (await api(n, 'GET', '/readyz')).status).toBe(200);
    expect(n.hub.storeLost).toBe(false);
    expect(d.all('drain')).toHaveLength(0);

    proxy.blackHole();
    expect(await d.next('drain', 10_000)).toMatchObject({ reason: 'store_unavailable' });
    expect(n.hub.storeLost).toBe(true);
    const ready = await api(n, 'GET', '/readyz');
    expect(ready.status).toBe(503);
  });
});

describe('StoreHealth', () => {
  const logger = pino({ level: 'silent' });

  it('a store that answers every ping slowly (within the command timeout) is not lost', async () => {
    let lost = 0;
    let pings = 0;
    const health = new StoreHealth({
      // Slower than a fifth of the window, faster than the store's 2 s command bound.
      ping: () => new Promise((resolve) => setTimeout(resolve, 900, pings++)),
      lostAfterMs: 3_000,
      onLost: () => lost++,
      onBack: () => {},
      logger,
    });
    health.start();
    defer(async () => health.stop());
    await expect.poll(() => pings, { timeout: 10_000 }).toBeGreaterThanOrEqual(5);
    expect(lost).toBe(0);
    expect(health.lost).toBe(false);
  });

  it('a check that fails after stop() does not declare the store lost', async () => {
    let lost = 0;
    let fail!: (err: Error) => void;
    const health = new StoreHealth({
      ping: () =>
        new Promise((_, reject) => {
          fail = reject;
        }),
      lostAfterMs: 100,
      onLost: () => lost++,
      onBack: () => {},
      logger,
    });
    health.start();
    const check = health.check();
    health.stop();
    await new Promise((r) => setTimeout(r, 150)); // past the loss window, by design
    fail(new Error('unreachable'));
    await check;
    expect(lost).toBe(0);
  });
});
