/**
 * Per-test cleanup: whatever a test starts through these is stopped after it, newest
 * first (daemons and sockets before nodes, nodes before Redis). Call `stopAfterEach()`
 * at a test file's top level: it registers the afterEach hook.
 */
import { afterEach } from 'vitest';
import type { SwitchboardNode } from '../../src/node.js';
import { startTestNode } from './node.js';
import { RedisServer, type RedisServerOptions } from './redis.js';

export function stopAfterEach() {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const stop of cleanups.splice(0).reverse()) await stop().catch(() => {});
  });
  const defer = (stop: () => Promise<unknown>): void => {
    cleanups.push(stop);
  };
  return {
    defer,
    async redis(opts: RedisServerOptions = {}): Promise<RedisServer> {
      const server = await RedisServer.start(opts);
      defer(() => server.close());
      return server;
    },
    async node(
      env: Record<string, string> = {},
      extra: Parameters<typeof startTestNode>[1] = {},
    ): Promise<SwitchboardNode> {
      const n = await startTestNode(env, extra);
      defer(() => n.kill());
      return n;
    },
  };
}
