/**
 * The chaos suite's link faults rest on TcpProxy: a black hole holds every byte and
 * closes nothing, a heal delivers what was held, a cut resets the connections. Checked
 * here against a real redis-server, through a real ioredis client.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpProxy } from '../helpers/proxy.js';
import { RedisServer } from '../helpers/redis.js';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const stop of cleanups.splice(0).reverse()) await stop().catch(() => {});
});

async function linked() {
  const redis = await RedisServer.start();
  cleanups.push(() => redis.close());
  const link = new TcpProxy(() => redis.port);
  await link.start();
  cleanups.push(() => link.close());
  const client = new Redis({ port: link.port, host: '127.0.0.1', maxRetriesPerRequest: null });
  client.on('error', () => {});
  cleanups.push(async () => client.disconnect());
  await client.ping();
  return { link, client };
}

/** Settles with 'answered' or 'pending' once `ms` passed without an answer. */
function within(p: Promise<unknown>, ms: number): Promise<'answered' | 'pending'> {
  return Promise.race([
    p.then(() => 'answered' as const),
    new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms)),
  ]);
}

describe('TcpProxy', () => {
  it('black-holed: holds commands without closing; healed: delivers them, in order', async () => {
    const { link, client } = await linked();
    let closed = false;
    client.on('close', () => {
      closed = true;
    });
    link.blackhole();
    const set = client.set('k', 'held');
    const get = client.get('k');
    expect(await within(get, 500)).toBe('pending');
    expect(closed).toBe(false);
    link.heal();
    expect(await set).toBe('OK');
    expect(await get).toBe('held');
  });

  it('black-holed then cut: the connection is reset and a new one passes', async () => {
    const { link, client } = await linked();
    const closedOnce = new Promise<void>((r) => client.once('close', () => r()));
    link.blackhole();
    const held = client.get('k');
    held.catch(() => {});
    expect(await within(held, 300)).toBe('pending');
    expect(link.cut()).toBeGreaterThan(0);
    await closedOnce;
    // ioredis reconnects through the proxy, which passes bytes again.
    expect(await client.set('k', 'after')).toBe('OK');
    expect(await client.get('k')).toBe('after');
  });
});
