/**
 * The hub counts what the store does, in one wrapper (hub/instrumented-store.ts): each
 * transition once, by its new status, and each call that failed with store_unavailable
 * once, whichever route, socket or loop made it. Over a real redis-server and real HTTP.
 */
import { describe, expect, it } from 'vitest';
import type { SwitchboardNode } from '../../src/node.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken, daemonToken, metric } from '../helpers/node.js';

const { redis, node } = stopAfterEach();

const transitions = (n: SwitchboardNode, status: string) =>
  metric(n, 'switchboard_request_transitions_total', `status="${status}"`);

describe('instrumented store', () => {
  it('counts each transition once, and a failed daemon HTTP result once', async () => {
    const server = await redis();
    // No sweeps or heartbeat rounds during the test: only the calls below touch the store.
    const n = await node({
      REDIS_URL: server.url,
      SWEEP_INTERVAL_MS: '60000',
      HEARTBEAT_INTERVAL_MS: '600000',
    });
    const client = await clientToken();
    const daemon = await daemonToken('laptop');
    const path = '/v1/runtimes/laptop/requests';
    const create = (key: string) =>
      api(n, 'POST', path, {
        token: client,
        body: { kind: 'count.me' },
        headers: { 'idempotency-key': key },
      });
    const heartbeat = () =>
      api(n, 'POST', '/v1/daemon/heartbeat', { token: daemon, body: { max: 1, leases: [] } });
    const report = (id: string, epoch: number) =>
      api(n, 'POST', `/v1/daemon/requests/${id}/result`, {
        token: daemon,
        body: { epoch, status: 'completed', result: 1 },
      });

    expect((await create('one')).status).toBe(201);
    expect((await create('one')).status).toBe(200); // a replay is no transition
    expect(await transitions(n, 'pending')).toBe(1);
    const [first] = (await heartbeat()).body.requests;
    expect(await transitions(n, 'running')).toBe(1);
    expect((await report(first.id, first.epoch)).status).toBe(200);
    expect(await transitions(n, 'completed')).toBe(1);
    const cancelled = await create('two');
    const cancel = await api(n, 'POST', `${path}/${cancelled.body.id}/cancel`, { token: client });
    expect(cancel.status).toBe(200);
    expect(await transitions(n, 'cancelled')).toBe(1);
    const retried = await api(n, 'POST', `${path}/${cancelled.body.id}/retry`, { token: client });
    expect(retried.status).toBe(201);
    expect(await transitions(n, 'pending')).toBe(3);

    const [second] = (await heartbeat()).body.requests;
    expect(second).toMatchObject({ id: retried.body.id });
    const errorsBefore = await metric(n, 'switchboard_store_errors_total');
    await server.kill();
    const failed = await report(second.id, second.epoch);
    expect(failed).toMatchObject({ status: 503, body: { error: { code: 'store_unavailable' } } });
    expect((await metric(n, 'switchboard_store_errors_total')) - errorsBefore).toBe(1);
  });
});
