/**
 * The node's re-check for lost wake-ups (a pending count per local runtime with free
 * capacity, and a claim where something waits) goes out a chunk at a time: with many
 * idle runtimes, it never puts more than a chunk of reads in front of a new request's
 * claim on the store connection, and an idle runtime costs no claim at all. Runtimes of
 * buckets the node swept itself are not re-checked at all.
 */
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { PUMP_ALL_CHUNK } from '../../hub/dispatcher.js';
import { RECHECK_EVERY_PASSES } from '../../hub/sweeper.js';
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
  await expect.poll(() => n.hub.dispatcher.connections.every((c) => c.free > 0)).toBe(true);

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
  // Two re-check rounds over every runtime, as a node does for runtimes of buckets it
  // did not sweep itself.
  await n.hub.dispatcher.pumpAll('sweep');
  await n.hub.dispatcher.pumpAll('sweep');
  expect(looks).toBe(2 * RUNTIMES);
  expect(most).toBeLessThanOrEqual(PUMP_ALL_CHUNK);
  // Idle runtimes cost no claim script (it took one each per round before): the few
  // claims seen are daemons' own first pumps, which may land after the patch.
  expect(claims).toBeLessThan(RUNTIMES / 8);

  // The node sweeps every bucket itself (it is alone): its passes, the re-check pass
  // among them, read no pending count at all, since the sweep saw any waiting work.
  looks = 0;
  for (let i = 0; i <= RECHECK_EVERY_PASSES; i++) await n.hub.sweeper.tick();
  expect(looks).toBe(0);
});
