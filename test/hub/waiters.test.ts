/**
 * A long-poll whose update subscription cannot be made live (a subscriber link that is
 * down or black-holed while the store answers) still answers at once for a request that
 * is already terminal, and by reading again for one that ends during the wait: it never
 * sits out its whole `wait_ms` waiting for the subscription.
 */
import { describe, expect, it, vi } from 'vitest';
import { MemoryRelay, type Relay } from '../../hub/relay.js';
import { waitForTerminal } from '../../hub/waiters.js';
import { HINT_RECORD_BYTES } from '../../stores/hints.js';
import { MemoryStore } from '../../stores/memory/store.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken, daemonToken, readyDaemon } from '../helpers/node.js';

const { defer, node } = stopAfterEach();

/** A relay whose subscriptions never become live (SUBSCRIBE unanswered); no hint arrives. */
function neverLive(relay: Relay): Relay {
  return {
    subscribe: (channel, listener) =>
      channel.endsWith('updates') ? () => {} : relay.subscribe(channel, listener),
    subscribed: (channel, timeoutMs = 2_000) =>
      channel.endsWith('updates')
        ? new Promise((resolve) => setTimeout(() => resolve(false), timeoutMs))
        : relay.subscribed(channel, timeoutMs),
    publish: (channel, message) => relay.publish(channel, message),
    onReconnect: (listener) => relay.onReconnect(listener),
    get connected() {
      return relay.connected;
    },
    close: () => relay.close(),
  };
}

it('answers a long-poll long before wait_ms when the subscription never becomes live', async () => {
  const n = await node({}, { wrapRelay: neverLive });
  const token = await clientToken();
  const daemon = await readyDaemon(n, await daemonToken('laptop'));
  defer(() => daemon.close());
  const created = await api(n, 'POST', '/v1/runtimes/laptop/requests', {
    token,
    body: { kind: 'k' },
  });
  const id = created.body.id as string;
  const pushed = await daemon.next('request');
  daemon.send({ type: 'result', id, epoch: pushed.request.epoch, status: 'completed' });
  await daemon.next('ack');
  // Terminal already: the answer must not wait for the 60 s of wait_ms. A hang is cut
  // off at 10 s so the test fails instead of timing out.
  const res = await fetch(`${n.url}/v1/runtimes/laptop/requests/${id}?wait_ms=60000`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { status: string }).status).toBe('completed');

  // Ends during the wait, with no hint: found by reading again, well before wait_ms.
  const second = await api(n, 'POST', '/v1/runtimes/laptop/requests', {
    token,
    body: { kind: 'k' },
  });
  const waiting = fetch(`${n.url}/v1/runtimes/laptop/requests/${second.body.id}?wait_ms=60000`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });
  const next = await daemon.next('request');
  daemon.send({
    type: 'result',
    id: second.body.id,
    epoch: next.request.epoch,
    status: 'completed',
  });
  const answer = await waiting;
  expect(((await answer.json()) as { status: string }).status).toBe('completed');
});

describe('a long-poll answered by the terminal hint', () => {
  it.each([
    ['small', 'ok', 1],
    ['too large to carry', 'x'.repeat(HINT_RECORD_BYTES), 2],
  ])('reads the record once when the hint carries it (%s result)', async (_, result, reads) => {
    const store = new MemoryStore();
    const relay = new MemoryRelay(store.bus);
    const rt = { workspace: 'acme', runtime: 'laptop' };
    const { request } = await store.create(rt, { kind: 'k' }, { createdBy: 'c' });
    const [claimed] = await store.claim(rt, { connectionId: 'c1', nodeId: 'n', max: 1 });
    let gets = 0;
    const counted = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'get') {
          return (...args: Parameters<MemoryStore['get']>) => {
            gets++;
            return target.get(...args);
          };
        }
        return Reflect.get(target, prop, receiver);
      },
    });
    const waiting = waitForTerminal(counted, relay, rt, request.id, 10_000);
    // The waiter's first read finds it running; then the result lands.
    await vi.waitFor(() => expect(gets).toBe(1));
    await store.report(rt, request.id, claimed!.epoch, { status: 'completed', result });
    expect(await waiting).toMatchObject({ id: request.id, status: 'completed' });
    expect(gets).toBe(reads);
  });
});
