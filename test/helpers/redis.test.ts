import { Cluster } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisCluster, RedisServer, uniquePrefix } from './redis.js';

describe('RedisServer', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await Promise.all(cleanup.splice(0).map((fn) => fn()));
  });

  it('serves commands, fails when killed, and comes back on restart', async () => {
    const server = await RedisServer.start();
    cleanup.push(() => server.close());
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(server.port).not.toBe(6379);
    expect(server.isRunning).toBe(true);

    const key = `${uniquePrefix()}:k`;
    const redis = server.client();
    await redis.set(key, 'v1');
    expect(await redis.get(key)).toBe('v1');

    await server.kill();
    expect(server.isRunning).toBe(false);
    // The tracked client was disconnected by kill(); a fresh fail-fast client cannot connect.
    await expect(redis.get(key)).rejects.toThrow();
    const offline = server.client({ retryStrategy: () => null, maxRetriesPerRequest: 0 });
    await expect(offline.get(key)).rejects.toThrow();

    await server.restart();
    expect(server.isRunning).toBe(true);
    const again = server.client();
    expect(await again.ping()).toBe('PONG');
    // No AOF: the data is gone after a SIGKILL.
    expect(await again.get(key)).toBeNull();

    await server.close();
    await server.close(); // idempotent
    expect(server.isRunning).toBe(false);
  });

  it('keeps AOF data across a SIGKILL + restart when appendonly', async () => {
    const server = await RedisServer.start({
      appendonly: true,
      extraArgs: ['--appendfsync', 'always'],
    });
    cleanup.push(() => server.close());
    const key = `${uniquePrefix()}:durable`;
    await server.client().set(key, 'kept');

    await server.kill();
    await server.restart();
    expect(await server.client().get(key)).toBe('kept');

    // A graceful stop/restart keeps it too.
    await server.stop();
    expect(server.isRunning).toBe(false);
    await server.restart();
    expect(await server.client().get(key)).toBe('kept');
  });

  it('refuses a port that another server already owns', async () => {
    const server = await RedisServer.start();
    cleanup.push(() => server.close());
    await expect(RedisServer.start({ port: server.port })).rejects.toThrow(
      /Address already in use/,
    );
    expect(await server.client().ping()).toBe('PONG');
  });

  it('explains how to install Redis when redis-server is missing', async () => {
    const path = process.env.PATH;
    process.env.PATH = '';
    try {
      await expect(RedisServer.start()).rejects.toThrow(
        'redis-server not found on PATH: install Redis (apt-get install -y redis-server) to run the Redis tests',
      );
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('RedisCluster', () => {
  it('forms a 3-node cluster that an ioredis Cluster client can use', async () => {
    const cluster = await RedisCluster.start(3);
    const client = new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 3 } });
    client.on('error', () => {});
    try {
      expect(cluster.nodes).toHaveLength(3);
      const prefix = uniquePrefix();
      // Keys without hash tags land in different slots (and so on different nodes).
      const keys = Array.from({ length: 20 }, (_, i) => `${prefix}:key${i}`);
      for (const key of keys) await client.set(key, key.toUpperCase());
      for (const key of keys) expect(await client.get(key)).toBe(key.toUpperCase());

      // Every master owns some of those keys.
      const counts = await Promise.all(cluster.nodes.map((node) => node.client().dbsize()));
      expect(counts.every((c) => c > 0)).toBe(true);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(keys.length);
    } finally {
      client.disconnect();
      await cluster.close();
    }
  });
});
