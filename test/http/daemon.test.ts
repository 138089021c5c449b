/** Daemon routes: heartbeat claims and renews, results and renewals fenced by epoch. */
import { beforeEach, describe, expect, it } from 'vitest';
import { type Harness, harness } from './harness.js';

const RQ = '/v1/runtimes/laptop/requests';
let h: Harness;
beforeEach(async () => {
  h = await harness();
});

async function claimOne(): Promise<{ id: string; epoch: number }> {
  await h.call('POST', RQ, { body: { kind: 'work', payload: { n: 1 } } });
  const hb = await h.call('POST', '/v1/daemon/heartbeat', { token: h.daemon, body: { max: 1 } });
  expect(hb.status).toBe(200);
  expect(hb.body.requests).toHaveLength(1);
  return hb.body.requests[0];
}

describe('heartbeat', () => {
  it('claims work for the token’s runtime and renews leases', async () => {
    const claimed = await claimOne();
    expect(claimed).toMatchObject({ kind: 'work', payload: { n: 1 }, epoch: 1, attempt: 1 });
    const hb = await h.call('POST', '/v1/daemon/heartbeat', {
      token: h.daemon,
      body: {
        max: 0,
        leases: [
          { id: claimed.id, epoch: claimed.epoch },
          { id: claimed.id, epoch: claimed.epoch + 5 },
        ],
      },
    });
    expect(hb.status).toBe(200);
    expect(hb.body.requests).toEqual([]);
    expect(hb.body.leases.map((l: { ok: boolean }) => l.ok)).toEqual([true, false]);
    expect(hb.body.heartbeat_interval_ms).toBe(15_000);
  });

  it('accepts an empty body (defaults) and rejects bad ones with 400', async () => {
    const empty = await h.call('POST', '/v1/daemon/heartbeat', { token: h.daemon });
    expect(empty.status).toBe(200);
    expect(empty.body.requests).toEqual([]);
    for (const body of [{ max: 101 }, { max: -1 }, { leases: [{ id: 'x' }] }, { extra: true }]) {
      const res = await h.call('POST', '/v1/daemon/heartbeat', { token: h.daemon, body });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.details.length).toBeGreaterThan(0);
    }
    const tooMany = Array.from({ length: 1001 }, (_, i) => ({ id: `r${i}`, epoch: 1 }));
    const big = await harness({ MAX_PAYLOAD_BYTES: String(1024 * 1024) });
    const res = await big.call('POST', '/v1/daemon/heartbeat', {
      token: big.daemon,
      body: { leases: tooMany },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
  });

  it('never claims another workspace’s work', async () => {
    const other = await h.auth.sign({ sub: 'd2', ws: 'other', role: 'daemon', rt: 'laptop' }, 60);
    await h.call('POST', RQ, { body: { kind: 'work' } });
    const hb = await h.call('POST', '/v1/daemon/heartbeat', { token: other, body: { max: 10 } });
    expect(hb.status).toBe(200);
    expect(hb.body.requests).toEqual([]);
  });
});

describe('result', () => {
  it('completes at the right epoch, repeats idempotently, and rejects a stale epoch with 409', async () => {
    const { id, epoch } = await claimOne();
    const stale = await h.call('POST', `/v1/daemon/requests/${id}/result`, {
      token: h.daemon,
      body: { epoch: epoch - 1, status: 'completed', result: 1 },
    });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('lease_lost');

    const body = { epoch, status: 'completed', result: { ok: true } };
    const ok = await h.call('POST', `/v1/daemon/requests/${id}/result`, { token: h.daemon, body });
    expect(ok.status).toBe(200);
    expect(ok.body.request).toMatchObject({ id, status: 'completed', result: { ok: true } });
    const again = await h.call('POST', `/v1/daemon/requests/${id}/result`, {
      token: h.daemon,
      body,
    });
    expect(again.status).toBe(200);

    const flip = await h.call('POST', `/v1/daemon/requests/${id}/result`, {
      token: h.daemon,
      body: { epoch, status: 'failed', error: { code: 'boom', message: 'late' } },
    });
    expect(flip.status).toBe(409);
    expect(flip.body.error.code).toBe('lease_lost');

    const client = await h.call('GET', `${RQ}/${id}`);
    expect(client.body.status).toBe('completed');
  });

  it('records a failure', async () => {
    const { id, epoch } = await claimOne();
    const res = await h.call('POST', `/v1/daemon/requests/${id}/result`, {
      token: h.daemon,
      body: { epoch, status: 'failed', error: { code: 'boom', message: 'it broke' } },
    });
    expect(res.status).toBe(200);
    expect(res.body.request).toMatchObject({
      status: 'failed',
      error: { code: 'boom', message: 'it broke' },
    });
  });

  it('answers 404 not_found for an unknown request, 409 lease_lost for a cancelled one', async () => {
    const unknown = await h.call('POST', '/v1/daemon/requests/01J00000000000000000000000/result', {
      token: h.daemon,
      body: { epoch: 1, status: 'completed' },
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
    const { id, epoch } = await claimOne();
    await h.call('POST', `${RQ}/${id}/cancel`);
    const cancelled = await h.call('POST', `/v1/daemon/requests/${id}/result`, {
      token: h.daemon,
      body: { epoch, status: 'completed' },
    });
    expect(cancelled.status).toBe(409);
    expect(cancelled.body.error.code).toBe('lease_lost');
  });

  it('rejects invalid result bodies with 400', async () => {
    const { id, epoch } = await claimOne();
    for (const body of [
      { epoch, status: 'completed', error: { code: 'x', message: 'y' } },
      { epoch, status: 'failed' },
      { epoch, status: 'running' },
      { status: 'completed' },
      { epoch: 'one', status: 'completed' },
    ]) {
      const res = await h.call('POST', `/v1/daemon/requests/${id}/result`, {
        token: h.daemon,
        body,
      });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
  });
});

describe('renew', () => {
  it('extends a held lease (200), answers 409 lease_lost at another epoch, 404 for no such id', async () => {
    const { id, epoch } = await claimOne();
    const ok = await h.call('POST', `/v1/daemon/requests/${id}/renew`, {
      token: h.daemon,
      body: { epoch },
    });
    expect(ok.status).toBe(200);
    expect(Date.parse(ok.body.lease_expires_at)).toBeGreaterThan(Date.now());
    const stale = await h.call('POST', `/v1/daemon/requests/${id}/renew`, {
      token: h.daemon,
      body: { epoch: epoch + 1 },
    });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('lease_lost');
    const missing = await h.call('POST', '/v1/daemon/requests/nope/renew', {
      token: h.daemon,
      body: { epoch: 1 },
    });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    const bad = await h.call('POST', `/v1/daemon/requests/${id}/renew`, {
      token: h.daemon,
      body: { epoch: 1, extra: 1 },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
  });
});

describe('an id that is not in the daemon’s runtime', () => {
  it('answers result and renew with one 404 not_found for another runtime’s, another workspace’s or a random id; a stale epoch stays 409', async () => {
    const sibling = await h.call('POST', '/v1/runtimes/desktop/requests', { body: { kind: 'w' } });
    const foreign = await h.call('POST', RQ, { token: h.otherClient, body: { kind: 'w' } });
    expect([sibling.status, foreign.status]).toEqual([201, 201]);
    const ids = [sibling.body.id, foreign.body.id, '01J00000000000000000000000', 'nope'];
    const { id, epoch } = await claimOne();
    for (const path of ['result', 'renew']) {
      const body = path === 'result' ? { epoch: 1, status: 'completed' } : { epoch: 1 };
      const answers = [];
      for (const other of ids) {
        const res = await h.call('POST', `/v1/daemon/requests/${other}/${path}`, {
          token: h.daemon,
          body,
        });
        answers.push({ status: res.status, body: res.body });
      }
      expect(answers[0]).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
      for (const a of answers) expect(a).toEqual(answers[0]);
      const stale = await h.call('POST', `/v1/daemon/requests/${id}/${path}`, {
        token: h.daemon,
        body: { ...body, epoch: epoch + 1 },
      });
      expect(stale.status).toBe(409);
      expect(stale.body.error.code).toBe('lease_lost');
    }
    // Nothing was touched: the others' requests are still pending.
    const still = await h.call('GET', `/v1/runtimes/desktop/requests/${sibling.body.id}`);
    expect(still.body.status).toBe('pending');
  });
});
