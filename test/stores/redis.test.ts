/** The store contract against RedisStore, on a private redis-server and on Redis Cluster. */
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe } from 'vitest';
import { runtimeKeys } from '../../stores/keys.js';
import { openRedis, type RedisTarget } from '../../stores/redis/connection.js';
import { RedisStore } from '../../stores/redis/store.js';
import type { RequestStore } from '../../stores/store.js';
import { RedisCluster, RedisServer, uniquePrefix } from '../helpers/redis.js';
import { storeContract } from './contract.js';
import { type ConsistencyHarness, storeConsistencyContract } from './contract-consistency.js';
import { type OrderingHarness, storeOrderingContract } from './contract-ordering.js';
import { type OutputHarness, storeOutputContract } from './contract-output.js';
import { storeQuotaContract } from './contract-quotas.js';

function redisHarness(
  target: () => RedisTarget,
): ConsistencyHarness & OutputHarness & OrderingHarness & { closeAll(): Promise<void> } {
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
    async raw(store, rt, ids) {
      const redis = (store as RedisStore).redis;
      const k = runtimeKeys(store.settings.prefix, rt);
      // One hash tag: every key below is in one slot, so multi-key EXISTS works on a cluster.
      const [pending, deadlines, leases, done, idx, records] = await Promise.all([
        redis.zcard(k.pending),
        redis.zcard(k.deadlines),
        redis.zcard(k.leases),
        redis.zcard(k.done),
        redis.zcard(k.ids),
        ids.length === 0 ? 0 : redis.exists(...ids.map((id) => k.record(id))),
      ]);
      return { pending, deadlines, leases, done, ids: idx, records };
    },
    async outputKeyTtl(store, rt, id) {
      return (store as RedisStore).redis.pttl(runtimeKeys(store.settings.prefix, rt).output(id));
    },
    async lineExists(store, rt, key) {
      const redis = (store as RedisStore).redis;
      return (await redis.exists(runtimeKeys(store.settings.prefix, rt).line(key))) === 1;
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
  storeConsistencyContract(harness);
  storeOutputContract(harness);
  storeQuotaContract(harness);
  storeOrderingContract(harness);
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
  storeConsistencyContract(harness);
  storeOutputContract(harness);
  storeQuotaContract(harness);
  storeOrderingContract(harness);
});
