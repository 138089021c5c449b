/**
 * A client subscribe whose snapshot cannot be read is answered with an error frame that
 * names the runtime and ids it was for, and subscribing again gets the snapshot. The
 * chaos suite lost a waiter to the old behaviour: the error named nothing, so the client
 * could not know what to redo.
 */
import { expect, it } from 'vitest';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken, FrameSocket, failStoreCalls } from '../helpers/node.js';

const { defer, node } = stopAfterEach();

it('names the runtime and ids of a subscribe it could not read; asked again, it is served', async () => {
  const n = await node();
  const token = await clientToken();
  const created = await api(n, 'POST', '/v1/runtimes/laptop/requests', {
    token,
    body: { kind: 'k' },
  });
  const id = created.body.id as string;
  failStoreCalls(n.store, 'get', 1);
  const c = await FrameSocket.client(n, token);
  defer(() => c.close());
  c.send({ type: 'subscribe', runtime: 'laptop', requests: [id] });
  expect(await c.next('error')).toMatchObject({
    code: 'store_unavailable',
    runtime: 'laptop',
    requests: [id],
  });
  await api(n, 'POST', `/v1/runtimes/laptop/requests/${id}/cancel`, { token });
  // Subscribing again works, with the current state.
  c.send({ type: 'subscribe', runtime: 'laptop', requests: [id] });
  const snap = await c.next('snapshot');
  expect(snap.requests.map((r: { status: string }) => r.status)).toEqual(['cancelled']);
});
