/**
 * The relay's reconnect listeners (re-drain, recheck, client refresh) run once the
 * channels that were there at the reconnect are live again, even while new channels
 * keep arriving, each with its own SUBSCRIBE in flight: channel churn on a busy node
 * must not postpone them for good. Real redis-server, real subscriber connection.
 */
import { describe, expect, it } from 'vitest';
import { RedisRelay } from '../../hub/relay.js';
import { openRedis } from '../../stores/redis/connection.js';
import { stopAfterEach } from '../helpers/cleanup.js';

const { defer, redis } = stopAfterEach();

describe('relay reconnect under channel churn', () => {
  it('onReconnect fires although a new SUBSCRIBE is always in flight', async () => {
    const server = await redis();
    const sub = await openRedis({ url: server.url }, () => {}, {
      enableOfflineQueue: true,
      autoResubscribe: false,
      maxRetriesPerRequest: null,
      retryStrategy: () => 20,
    });
    const pub = server.client();
    const relay = new RedisRelay(sub, pub, () => {});
    defer(() => relay.close());
    for (let i = 0; i < 20; i++) relay.subscribe(`base:${i}`, () => {});
    await expect.poll(() => relay.subscribed('base:19', 100), { timeout: 5_000 }).toBe(true);

    // Churn: every SUBSCRIBE the relay sends brings a new channel a moment later, and
    // its reply is handed back only once that next channel's SUBSCRIBE is on the wire,
    // so while churn is on some SUBSCRIBE is in flight at every moment.
    let churn = false;
    let added = 0;
    const hold: { madeNext: (() => void) | null } = { madeNext: null };
    const original = sub.subscribe.bind(sub) as (...names: string[]) => Promise<unknown>;
    (sub as any).subscribe = (...names: string[]) => {
      hold.madeNext?.();
      hold.madeNext = null;
      if (!churn || added >= 20_000) return original(...names);
      added += 1;
      const name = `churn:${added}`;
      setTimeout(() => relay.subscribe(name, () => {}), 1);
      const next = new Promise<void>((resolve) => {
        hold.madeNext = resolve;
      });
      return Promise.all([original(...names), next]).then(([reply]) => reply);
    };
    defer(async () => {
      churn = false;
      hold.madeNext?.();
    });

    let fired = 0;
    relay.onReconnect(() => {
      fired += 1;
    });
    churn = true;
    await pub.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    // Far less than the bound would be enough for the snapshot; wait well past it.
    await expect.poll(() => fired, { timeout: 6_000, interval: 20 }).toBeGreaterThan(0);
    churn = false;
    hold.madeNext?.();
    expect(added).toBeGreaterThan(0);
    // The channels that were there at the reconnect are live again.
    expect(await relay.subscribed('base:0', 1_000)).toBe(true);
  });
});
