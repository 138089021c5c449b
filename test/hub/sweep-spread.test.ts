/**
 * The sweep's re-check for lost wake-ups (one claim per local runtime with free
 * capacity) goes out a chunk at a time: with many idle runtimes, a sweep never puts more
 * than a chunk of claims in front of a new request's claim on the store connection.
 */
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { PUMP_ALL_CHUNK } from '../../hub/dispatcher.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { daemonToken, type FrameSocket, readyDaemon } from '../helpers/node.js';

const { defer, node } = stopAfterEach();
const RUNTIMES = 160;

it('sweeps local runtimes a chunk of claims at a time', async () => {
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
  let sweeps = 0;
  const claim = n.store.claim.bind(n.store);
  n.store.claim = async (rt, opts) => {
    inFlight++;
    sweeps++;
    most = Math.max(most, inFlight);
    try {
      return await claim(rt, opts);
    } finally {
      inFlight--;
    }
  };
  // Two sweep rounds over every runtime.
  await expect.poll(() => sweeps, { timeout: 10_000 }).toBeGreaterThanOrEqual(2 * RUNTIMES);
  expect(most).toBeLessThanOrEqual(PUMP_ALL_CHUNK);
});
