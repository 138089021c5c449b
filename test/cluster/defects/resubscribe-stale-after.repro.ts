/**
 * KNOWN DEFECT, found by the chaos suite (`npm test`, 2026-12-03); a branch-local repro,
 * named `.repro.ts` so that `npm test` does not pick it up while it fails. Run it with
 *   npx vitest run --config test/cluster/defects/vitest.repro.config.ts
 *
 * docs/PROTOCOL.md 6a: output on a client socket comes "in offset order, with no gap and
 * no repeat, also when the client resubscribes ... with the last offset it has". A client
 * whose subscribe failed asks again with `after` = the last offset it has when it sends
 * the frame; meanwhile the follower that the failed frame left (hub/client-socket.ts
 * `subscribe`) may already have sent it more. The hub then sets that follower's `after`
 * back to the frame's (`if (after !== undefined) follower.after = after`) and its catch-up
 * sends those chunks again on the same socket. The chaos run: a socket reader got offsets
 * 1..8, then 6, 7, 8 again (23 chunks for 20 stored). The likely fix: never move a
 * follower back, `follower.after = Math.max(follower.after, after)` (what it sent on this
 * socket, the client has or will have before the catch-up).
 */
import { expect, it } from 'vitest';
import { stopAfterEach } from '../../helpers/cleanup.js';
import { api, clientToken, daemonToken, FrameSocket, readyDaemon } from '../../helpers/node.js';
import { emitOutput } from '../../helpers/output.js';

const { defer, node } = stopAfterEach();

it('a subscribe naming an older after than the socket was sent repeats nothing', async () => {
  const n = await node();
  const token = await clientToken();
  const daemon = await readyDaemon(n, await daemonToken('laptop'), 1);
  defer(async () => daemon.ws.terminate());
  await api(n, 'POST', '/v1/runtimes/laptop/requests', { token, body: { kind: 'k' } });
  const { id, epoch } = (await daemon.next('request')).request as { id: string; epoch: number };
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
