/** The store contract against RedisStore, on a private redis-server and on Redis Cluster. */
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe } from 'vitest';
import { openRedis, type RedisTarget } from '../../stores/redis/connection.js';
import { RedisStore } from '../../stores/redis/store.js';
import type { RequestStore } from '../../stores/store.js';
import { RedisCluster, RedisServer, uniquePrefix } from '../helpers/redis.js';
import { type StoreHarness, storeContract } from './contract.js';

function redisHarness(target: () => RedisTarget): StoreHarness & { closeAll(): Promise<void> } {
  const opened: RequestStore[] = [];
  const track = <T extends RequestStore>(s: T) => {
    opened.push(s);
    return s;
  };
  return {
    async open(settings) {
      return track(await RedisStore.connect(target(), { ...settings, prefix: uniquePrefix() }));
    },
    async peer(store) {
      return track(await RedisStore.connect(target(), store.settings));
    },
    async listen(store, channel) {
      const sub = (await openRedis(target())) as Redis | Cluster;
      const messages: string[] = [];
      sub.on('message', (ch: string, msg: string) => {
        if (ch === channel) messages.push(msg);
      });
      await sub.subscribe(channel);
      void store;
      return {
        messages,
        async stop() {
          sub.disconnect();
        },
      };
    },
    async closeAll() {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    },
  };
}

describe('RedisStore on a redis-server', () => {
  let server: RedisServer;
  const harness = redisHarness(() => ({ url: server.url }));
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await harness.closeAll();
    await server?.close();
  });
  storeContract(harness);
});

describe('RedisStore on a Redis Cluster', () => {
  let cluster: RedisCluster;
  const harness = redisHarness(() => ({ cluster: cluster.startupNodes }));
  beforeAll(async () => {
    cluster = await RedisCluster.start(3);
  });
  afterAll(async () => {
    await harness.closeAll();
    await cluster?.close();
  });
  storeContract(harness);
});
