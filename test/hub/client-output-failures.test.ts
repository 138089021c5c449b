/**
 * A client socket following output when the store fails under it (DESIGN.md section 6,
 * docs/PROTOCOL.md 6a: stored chunks go out before the snapshot, and every chunk before
 * a terminal `request` frame). Both found by the chaos suite's output readers (issue 11):
 * a resubscribe after a failed `subscribe {output: true}` got the snapshot without the
 * stored output (the failed frame's follower was left in place and never caught up), and
 * a terminal frame went out even when the catch-up read before it had failed; and (the
 * chaos suite again) the first fix moved a follower back to the `after` of a frame sent
 * while chunks were still on their way, repeating them on the socket.
 */
import { expect, it } from 'vitest';
import { HINT_RECORD_BYTES } from '../../stores/hints.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import {
  api,
  clientToken,
  daemonToken,
  FrameSocket,
  failStoreCalls,
  readyDaemon,
} from '../helpers/node.js';
import { emitOutput } from '../helpers/output.js';

const { defer, node } = stopAfterEach();

/** A node, a client token, and a request running on a raw daemon socket. */
async function runningRequest() {
  const n = await node();
  const token = await clientToken();
  const daemon = await readyDaemon(n, await daemonToken('laptop'), 1);
  defer(async () => daemon.ws.terminate());
  await api(n, 'POST', '/v1/runtimes/laptop/requests', { token, body: { kind: 'k' } });
  const { id, epoch } = (await daemon.next('request')).request as { id: string; epoch: number };
  return { n, token, daemon, id, epoch };
}

it('a resubscribe after a failed output subscribe sends the stored output before the snapshot', async () => {
  const { n, token, daemon, id, epoch } = await runningRequest();
  await emitOutput(daemon, id, epoch, 1, 3, (seq) => ({ seq }));
  daemon.send({ type: 'result', id, epoch, status: 'completed', result: null });
  await daemon.next((f) => f.type === 'ack' && f.id === id);

  failStoreCalls(n.store, 'get', 1);
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

it('a terminal request frame never overtakes output the store could not be read for', async () => {
  const { n, token, daemon, id, epoch } = await runningRequest();
  const c = await FrameSocket.client(n, token);
  defer(() => c.close());
  c.send({ type: 'subscribe', runtime: 'laptop', requests: [id], output: true });
  expect((await c.next('snapshot')).requests[0].status).toBe('running');

  // The store does not answer the reads of that chunk (at its hint, at the terminal
  // hint and once more), then comes back.
  const reads = failStoreCalls(n.store, 'readOutput', 3);
  await emitOutput(daemon, id, epoch, 1, 1, () => 'x'.repeat(HINT_RECORD_BYTES + 1));
  daemon.send({ type: 'result', id, epoch, status: 'completed', result: null });
  await daemon.next((f) => f.type === 'ack' && f.id === id);

  // The terminal frame waits for the store, and comes after the chunk.
  await c.next((f) => f.type === 'request' && f.request.status === 'completed', 10_000);
  expect(reads()).toBeGreaterThan(3);
  const frames = c.frames.filter((f) => f.type === 'output' || f.type === 'request');
  expect(frames.map((f) => (f.type === 'output' ? f.offset : f.request.status))).toEqual([
    1,
    'completed',
  ]);
});

it('a subscribe naming an older after than the socket was sent repeats nothing', async () => {
  const { n, token, daemon, id, epoch } = await runningRequest();
  await emitOutput(daemon, id, epoch, 1, 3, (seq) => ({ seq }));

  const c = await FrameSocket.client(n, token);
  defer(() => c.close());
  const subscribe = { type: 'subscribe', runtime: 'laptop', requests: [id], output: true };
  c.send({ ...subscribe, after: { [id]: 0 } });
  await c.next('snapshot');
  expect(c.all('output').map((f) => f.offset)).toEqual([1, 2, 3]);
  // Sent when the client had only offset 1 (2 and 3 were on their way to it).
  c.send({ ...subscribe, after: { [id]: 1 } });
  await c.next((f) => f.type === 'snapshot' && c.all('snapshot').length === 2);
  await emitOutput(daemon, id, epoch, 4, 4, (seq) => ({ seq }));
  daemon.send({ type: 'result', id, epoch, status: 'completed', result: null });
  await c.next((f) => f.type === 'request' && f.request.status === 'completed');
  expect(c.all('output').map((f) => f.offset)).toEqual([1, 2, 3, 4]);
});

it('a terminal state whose read fails several times still reaches a subscribed socket', async () => {
  const { n, token, daemon, id, epoch } = await runningRequest();
  const c = await FrameSocket.client(n, token);
  defer(() => c.close());
  c.send({ type: 'subscribe', runtime: 'laptop', requests: [id] });
  expect((await c.next('snapshot')).requests[0].status).toBe('running');
  // A result too large for its hint to carry the record: the node reads it, and the
  // store does not answer that read, nor the next few.
  const reads = failStoreCalls(n.store, 'get', 3);
  daemon.send({
    type: 'result',
    id,
    epoch,
    status: 'completed',
    result: 'r'.repeat(HINT_RECORD_BYTES),
  });
  await daemon.next((f) => f.type === 'ack' && f.id === id);
  const end = await c.next((f) => f.type === 'request' && f.request.status === 'completed', 15_000);
  expect(end.request.id).toBe(id);
  expect(reads()).toBeGreaterThan(3);
});
