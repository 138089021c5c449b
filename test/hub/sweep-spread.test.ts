/**
 * The sweep's re-check for lost wake-ups (a pending count per local runtime with free
 * capacity, and a claim where something waits) goes out a chunk at a time: with many
 * idle runtimes, a sweep never puts more than a chunk of reads in front of a new
 * request's claim on the store connection, and an idle runtime costs no claim at all.
 */
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { PUMP_ALL_CHUNK } from '../../hub/dispatcher.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { daemonToken, type FrameSocket, readyDaemon } from '../helpers/node.js';

const { defer, node } = stopAfterEach();
const RUNTIMES = 160;

it('sweeps local runtimes a chunk of reads at a time, and claims for none that is idle', async () => {
  const n = await node({ SWEEP_INTERVAL_MS: '200' });
  const prefix = `sweep-${randomUUID().slice(0, 8)}`;
  const daemons: FrameSocket[] = [];
  for (let i = 0; i < RUNTIMES; i += 20) {
    daemons.push(
      ...(await Promise.all(
        Array.from({ length: 20 }, async (_, j) =>
          readyDaemon(n, await daemonToken(`${prefix}-${i + j}`), 1),
        ),
      )),
    );
  }
  for (const d of daemons) defer(() => d.close());
  await expect.poll(() => n.hub.dispatcher.connections.length).toBe(RUNTIMES);

  let inFlight = 0;
  let most = 0;
  let looks = 0;
  let claims = 0;
  const pendingCount = n.store.pendingCount.bind(n.store);
  n.store.pendingCount = async (rt) => {
    inFlight++;
    looks++;
    most = Math.max(most, inFlight);
    try {
      return await pendingCount(rt);
    } finally {
      inFlight--;
    }
  };
  const claim = n.store.claim.bind(n.store);
  n.store.claim = async (rt, opts) => {
    claims++;
    return claim(rt, opts);
  };
  // Two sweep rounds over every runtime.
  await expect.poll(() => looks, { timeout: 10_000 }).toBeGreaterThanOrEqual(2 * RUNTIMES);
  expect(most).toBeLessThanOrEqual(PUMP_ALL_CHUNK);
  // Idle runtimes cost no claim script (it took one each per round before): the few
  // claims seen are daemons' own first pumps, which may land after the patch.
  expect(claims).toBeLessThan(RUNTIMES / 8);
});
