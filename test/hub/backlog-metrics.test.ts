/**
 * Backlog metrics (DESIGN.md section 4, Operations) read from /metrics while a daemon
 * is stalled and then resumed: `switchboard_backlog_pending` and
 * `switchboard_backlog_oldest_age_seconds` by workspace (each runtime is swept by one
 * node: pending sums over nodes, the age is their max), and the schedule-to-start
 * histogram by claim path. On the embedded store (one node) and on Redis (two nodes).
 */
import { describe, expect, it } from 'vitest';
import { connectDaemon } from '../../src/client/daemon.js';
import type { SwitchboardNode } from '../../src/node.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken, daemonToken, startTestNode } from '../helpers/node.js';
import { RedisServer } from '../helpers/redis.js';

const { defer } = stopAfterEach();
const HEARTBEAT_INTERVAL_MS = 2_000;

/** Every series of `name` on `nodes` whose labels contain `label`, as numbers. */
async function series(nodes: SwitchboardNode[], name: string, label: string): Promise<number[]> {
  const values: number[] = [];
  for (const n of nodes) {
    const { body } = await api(n, 'GET', '/metrics');
    for (const line of String(body).split('\n')) {
      if (line.match(/^\w+/)?.[0] === name && line.includes(label)) {
        values.push(Number(line.slice(line.lastIndexOf(' ') + 1)));
      }
    }
  }
  return values;
}

async function backlog(nodes: SwitchboardNode[]) {
  const pending = await series(nodes, 'switchboard_backlog_pending', 'workspace="acme"');
  const ages = await series(nodes, 'switchboard_backlog_oldest_age_seconds', 'workspace="acme"');
  return {
    pending: pending.reduce((a, b) => a + b, 0),
    age: Math.max(0, ...ages),
  };
}

const BACKENDS: [string, () => Promise<SwitchboardNode[]>][] = [
  ['memory, one node', async () => [await startTestNode(env())]],
  [
    'redis, two nodes',
    async () => {
      const server = await RedisServer.start();
      defer(() => server.close());
      return Promise.all(
        ['node-a', 'node-b'].map((id) =>
          startTestNode(env({ REDIS_URL: server.url, NODE_ID: id })),
        ),
      );
    },
  ],
];

function env(extra: Record<string, string> = {}) {
  return {
    HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS),
    SWEEP_INTERVAL_MS: '100',
    ...extra,
  };
}

describe.each(BACKENDS)('backlog metrics (%s)', (_name, start) => {
  it('the backlog age rises while the daemon is stalled, and is 0 within a heartbeat interval of its resume', async () => {
    const nodes = await start();
    for (const n of nodes) defer(() => n.kill());
    let resume: () => void = () => {};
    const stalled = new Promise<void>((resolve) => {
      resume = resolve;
    });
    const started: string[] = [];
    const daemon = connectDaemon({
      url: nodes.map((n) => n.url),
      token: await daemonToken('laptop'),
      capacity: 1,
      closeTimeoutMs: 1_000,
      handlers: {
        work: async (_payload, ctx) => {
          started.push(ctx.id);
          await stalled;
          return 'done';
        },
      },
    });
    defer(() => daemon.close());

    const token = await clientToken();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const created = await api(
        nodes[i % nodes.length] as SwitchboardNode,
        'POST',
        '/v1/runtimes/laptop/requests',
        {
          token,
          body: { kind: 'work', payload: i },
        },
      );
      expect(created.status).toBe(201);
      ids.push(created.body.id);
    }
    // One runs (capacity 1), three wait.
    await expect.poll(() => started.length).toBe(1);
    await expect.poll(async () => (await backlog(nodes)).pending, { timeout: 5_000 }).toBe(3);
    const first = await backlog(nodes);
    await expect
      .poll(async () => (await backlog(nodes)).age, { timeout: 5_000 })
      .toBeGreaterThan(first.age);
    expect((await backlog(nodes)).age).toBeGreaterThan(0);

    // Resumed: the queue drains, and the next sweep pass (every 100 ms) reports it.
    resume();
    await expect
      .poll(async () => backlog(nodes), { timeout: HEARTBEAT_INTERVAL_MS, interval: 50 })
      .toEqual({ pending: 0, age: 0 });

    // Every request was claimed once, each observed by schedule-to-start under its path.
    for (const id of ids) {
      const got = await api(
        nodes[0] as SwitchboardNode,
        'GET',
        `/v1/runtimes/laptop/requests/${id}?wait_ms=5000`,
        { token },
      );
      expect(got.body).toMatchObject({ status: 'completed', attempt: 1 });
    }
    const counts = await series(nodes, 'switchboard_schedule_to_start_seconds_count', 'path=');
    expect(counts.reduce((a, b) => a + b, 0)).toBe(4);
  });
});
