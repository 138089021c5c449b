/**
 * KNOWN DEFECT, found by the chaos suite (issue 11); a branch-local repro, named
 * `.repro.ts` so that `npm test` does not pick it up while it fails. Run it with
 *   npx vitest run --config test/cluster/defects/vitest.repro.config.ts
 *
 * docs/PROTOCOL.md 6a: "The chunks already stored are sent before the snapshot". A
 * subscribe with `output: true` that fails (store_unavailable error frame) leaves its
 * output follower in the subscription (hub/client-socket.ts `subscribe`: followers are
 * added before the reads). The client does what the error asks and subscribes again:
 * the id already has a follower, so it is not among this frame's `following`, nothing
 * catches it up, and the snapshot goes out without the stored output. If the request is
 * terminal, the client sees the end with none of its output. In the chaos run it hit a
 * client socket on a node whose Redis link was black-holed: 6 readers saw `completed`
 * with 0 of their 7-28 chunks.
 */
import { expect, it } from 'vitest';
import { StoreError } from '../../../stores/errors.js';
import { stopAfterEach } from '../../helpers/cleanup.js';
import { api, clientToken, daemonToken, FrameSocket, readyDaemon } from '../../helpers/node.js';
import { emitOutput } from '../../helpers/output.js';

const { defer, node } = stopAfterEach();

it('a resubscribe after a failed output subscribe sends the stored output before the snapshot', async () => {
  const n = await node();
  const token = await clientToken();
  const daemon = await readyDaemon(n, await daemonToken('laptop'), 1);
  defer(async () => daemon.ws.terminate());
  await api(n, 'POST', '/v1/runtimes/laptop/requests', { token, body: { kind: 'k' } });
  const { id, epoch } = (await daemon.next('request')).request as { id: string; epoch: number };
  await emitOutput(daemon, id, epoch, 1, 3, (seq) => ({ seq }));
  daemon.send({ type: 'result', id, epoch, status: 'completed', result: null });
  await daemon.next((f) => f.type === 'ack' && f.id === id);

  const get = n.store.get.bind(n.store);
  let failures = 1;
  n.store.get = async (rt, rid) => {
    if (failures-- > 0) throw new StoreError('store_unavailable', 'injected');
    return get(rt, rid);
  };
  const c = await FrameSocket.client(n, token);
  defer(() => c.close());
  const subscribe = { type: 'subscribe', runtime: 'laptop', requests: [id], output: true };
  c.send(subscribe);
  expect(await c.next('error')).toMatchObject({ code: 'store_unavailable', requests: [id] });
  c.send({ ...subscribe, after: { [id]: 0 } });
  const snap = await c.next('snapshot');
  expect(snap.requests[0].status).toBe('completed');
  // Everything stored, before the snapshot that says the request is over.
  expect(c.all('output').map((f) => f.offset)).toEqual([1, 2, 3]);
});
