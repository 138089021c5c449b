/**
 * Held requests of an ordering key wait for their line, not for a wake-up: the sweeper
 * does not take them for work whose wake-up was lost (no re-wake, no claim), and the
 * next one is pushed as soon as the head's result is in.
 */
import { expect, it } from 'vitest';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken, daemonToken, metric, readyDaemon } from '../helpers/node.js';

const { defer, node } = stopAfterEach();

it('does not re-wake for held requests of a key whose head runs; pushes the next after its result', async () => {
  // Sweeps driven by the test alone (the timer's first pass is a minute away).
  const n = await node({ SWEEP_INTERVAL_MS: '60000' });
  const daemon = await readyDaemon(n, await daemonToken('laptop'), 2);
  defer(() => daemon.close());
  await expect.poll(() => n.hub.dispatcher.connections.length).toBe(1);

  const token = await clientToken();
  const made = await api(n, 'POST', '/v1/runtimes/laptop/requests/batch', {
    token,
    body: {
      requests: [0, 1, 2].map((i) => ({ kind: 'work', payload: i, ordering_key: 'k' })),
    },
  });
  expect(made.status).toBe(201);
  const ids = made.body.requests.map((r: { id: string }) => r.id) as string[];
  const head = await daemon.next('request');
  expect(head.request.id).toBe(ids[0]);
  const info = await api(n, 'GET', '/v1/runtimes/laptop', { token });
  expect(info.body).toMatchObject({ pending: 2, running: 1 });

  // Three passes: two held requests wait through all of them, with a free slot.
  for (let i = 0; i < 3; i++) await n.hub.sweeper.tick();
  expect(await metric(n, 'switchboard_sweeper_rewakes_total')).toBe(0);
  expect(daemon.all('request')).toHaveLength(1);

  daemon.send({ type: 'result', id: ids[0], epoch: head.request.epoch, status: 'completed' });
  const next = await daemon.next((f) => f.type === 'request' && f.request.id === ids[1]);
  expect(next.request).toMatchObject({ id: ids[1], attempt: 1 });
  expect(daemon.all('request').map((f) => f.request.id)).toEqual([ids[0], ids[1]]);
});
