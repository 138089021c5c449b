/** Client routes: create, idempotency, batch, get, list, cancel, retry, runtimes, workspaces. */
import { beforeEach, describe, expect, it } from 'vitest';
import { type Harness, harness } from './harness.js';

const RQ = '/v1/runtimes/laptop/requests';
let h: Harness;
beforeEach(async () => {
  h = await harness();
});

describe('create', () => {
  it('answers 201 with the request, scoped to the caller', async () => {
    const res = await h.call('POST', RQ, { body: { kind: 'skills.list', payload: { a: 1 } } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      workspace_id: 'acme',
      runtime_id: 'laptop',
      kind: 'skills.list',
      payload: { a: 1 },
      status: 'pending',
      attempt: 0,
      max_attempts: 1,
      created_by: 'alice',
      result: null,
      error: null,
    });
    expect(h.hub.noted).toEqual(['pending']);
  });

  it('replays an idempotent create with 200 and rejects another body with 409', async () => {
    const headers = { 'idempotency-key': 'order-42' };
    const first = await h.call('POST', RQ, { body: { kind: 'a' }, headers });
    const again = await h.call('POST', RQ, { body: { kind: 'a' }, headers });
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect(h.hub.noted).toHaveLength(1);
    const conflict = await h.call('POST', RQ, { body: { kind: 'b' }, headers });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('idempotency_conflict');
  });

  it('rejects a bad Idempotency-Key with 400', async () => {
    const res = await h.call('POST', RQ, {
      body: { kind: 'a' },
      headers: { 'idempotency-key': 'has space' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details[0].path).toEqual(['idempotency-key']);
    const long = await h.call('POST', RQ, {
      body: { kind: 'a' },
      headers: { 'idempotency-key': 'k'.repeat(256) },
    });
    expect(long.status).toBe(400);
    expect(long.body.error.code).toBe('invalid_request');
  });

  it('rejects malformed JSON, wrong types and unknown fields with 400', async () => {
    const malformed = await h.call('POST', RQ, { raw: '{"kind": ' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toEqual({ code: 'invalid_request', message: 'malformed JSON' });

    const empty = await h.call('POST', RQ, { raw: '' });
    expect(empty.status).toBe(400);
    expect(empty.body.error.code).toBe('invalid_request');

    const types = await h.call('POST', RQ, { body: { kind: 7, priority: 'high' } });
    expect(types.status).toBe(400);
    expect(types.body.error.code).toBe('invalid_request');
    const paths = types.body.error.details.map((d: { path: unknown[] }) => d.path);
    expect(paths).toEqual(expect.arrayContaining([['kind'], ['priority']]));
    for (const d of types.body.error.details) expect(typeof d.message).toBe('string');

    const unknown = await h.call('POST', RQ, { body: { kind: 'a', colour: 'red' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('invalid_request');
    expect(JSON.stringify(unknown.body.error.details)).toContain('colour');

    const range = await h.call('POST', RQ, { body: { kind: 'a', priority: 10 } });
    expect(range.status).toBe(400);
    expect(range.body.error.details[0].path).toEqual(['priority']);
    expect(h.hub.noted).toHaveLength(0);
  });

  it('rejects an invalid runtime id with 400', async () => {
    const res = await h.call('POST', '/v1/runtimes/bad%20name/requests', { body: { kind: 'a' } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details[0].path).toEqual(['runtime']);
    const long = await h.call('GET', `/v1/runtimes/${'r'.repeat(129)}/requests`);
    expect(long.status).toBe(400);
    expect(long.body.error.code).toBe('invalid_request');
  });
});

describe('batch', () => {
  it('creates all with 201, or none with 400', async () => {
    const ok = await h.call('POST', `${RQ}/batch`, {
      body: { requests: [{ kind: 'a' }, { kind: 'b', priority: 9 }] },
    });
    expect(ok.status).toBe(201);
    expect(ok.body.requests.map((r: { kind: string }) => r.kind)).toEqual(['a', 'b']);
    expect(h.hub.noted).toHaveLength(2);

    const bad = await h.call('POST', `${RQ}/batch`, {
      body: { requests: [{ kind: 'c' }, { kind: 'no spaces' }] },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
    expect(bad.body.error.details[0].path).toEqual(['requests', 1, 'kind']);

    const none = await h.call('POST', `${RQ}/batch`, { body: { requests: [] } });
    expect(none.status).toBe(400);
    expect(none.body.error.code).toBe('invalid_request');

    const list = await h.call('GET', RQ);
    expect(list.body.requests).toHaveLength(2);
  });
});

describe('get and list', () => {
  it('gets a request, with and without wait_ms', async () => {
    const created = await h.call('POST', RQ, { body: { kind: 'a' } });
    const got = await h.call('GET', `${RQ}/${created.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);
    const waited = await h.call('GET', `${RQ}/${created.body.id}?wait_ms=50`);
    expect(waited.status).toBe(200);
    expect(waited.body.id).toBe(created.body.id);
    for (const bad of ['abc', '60001', '-1', '1.5']) {
      const res = await h.call('GET', `${RQ}/${created.body.id}?wait_ms=${bad}`);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.details[0].path).toEqual(['wait_ms']);
    }
  });

  it('answers 404 for a missing id', async () => {
    for (const id of ['01J00000000000000000000000', 'not%20an%20id']) {
      const res = await h.call('GET', `${RQ}/${id}`);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
  });

  it('lists newest first, page by page with the cursor', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await h.call('POST', RQ, { body: { kind: `k${i}` } })).body.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const res = await h.call('GET', `${RQ}?limit=2${q}`);
      expect(res.status).toBe(200);
      expect(res.body.requests.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.requests.map((r: { id: string }) => r.id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(seen).toEqual([...ids].reverse());
    expect(pages).toBe(3);
  });

  it('filters by status and validates the query', async () => {
    const a = await h.call('POST', RQ, { body: { kind: 'a' } });
    await h.call('POST', RQ, { body: { kind: 'b' } });
    await h.call('POST', `${RQ}/${a.body.id}/cancel`);
    const cancelled = await h.call('GET', `${RQ}?status=cancelled`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.requests.map((r: { id: string }) => r.id)).toEqual([a.body.id]);
    expect(cancelled.body.next_cursor).toBeNull();
    for (const q of ['status=done', 'limit=0', 'limit=501', 'limit=x']) {
      const res = await h.call('GET', `${RQ}?${q}`);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
  });
});

describe('ordering keys', () => {
  it('shows ordering_key in the record (null without one) and validates it', async () => {
    const keyed = await h.call('POST', RQ, { body: { kind: 'a', ordering_key: 'cart:42/x-1' } });
    expect(keyed.status).toBe(201);
    expect(keyed.body.ordering_key).toBe('cart:42/x-1');
    const plain = await h.call('POST', RQ, { body: { kind: 'a' } });
    expect(plain.body.ordering_key).toBeNull();
    expect((await h.call('GET', `${RQ}/${keyed.body.id}`)).body).toEqual(keyed.body);
    for (const bad of ['', 'has space', 'k'.repeat(129), 'ümlaut', 7]) {
      const res = await h.call('POST', RQ, { body: { kind: 'a', ordering_key: bad } });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
      expect(res.body.error.details[0].path).toEqual(['ordering_key']);
    }
    const batch = await h.call('POST', `${RQ}/batch`, {
      body: {
        requests: [
          { kind: 'a', ordering_key: 'ok' },
          { kind: 'b', ordering_key: 'n o' },
        ],
      },
    });
    expect(batch.status).toBe(400);
    expect(batch.body.error.details[0].path).toEqual(['requests', 1, 'ordering_key']);
  });

  it('lists one line in order with ?ordering_key=, page by page', async () => {
    const made = await h.call('POST', `${RQ}/batch`, {
      body: {
        requests: [
          { kind: 'a', ordering_key: 'k' },
          { kind: 'b', ordering_key: 'other' },
          { kind: 'c', ordering_key: 'k' },
          { kind: 'd' },
          { kind: 'e', ordering_key: 'k' },
        ],
      },
    });
    const want = made.body.requests
      .filter((r: { ordering_key: string | null }) => r.ordering_key === 'k')
      .map((r: { id: string }) => r.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const res = await h.call('GET', `${RQ}?ordering_key=k&limit=2${q}`);
      expect(res.status).toBe(200);
      seen.push(...res.body.requests.map((r: { id: string }) => r.id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(seen).toEqual(want);
    expect(pages).toBe(2);
    for (const q of ['ordering_key=a%20b', 'ordering_key=k&cursor=01J00000000000000000000000']) {
      const res = await h.call('GET', `${RQ}?${q}`);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
  });
});

describe('cancel and retry', () => {
  it('cancels once (200), then 409 already_terminal', async () => {
    const created = await h.call('POST', RQ, { body: { kind: 'a' } });
    const res = await h.call('POST', `${RQ}/${created.body.id}/cancel`, {
      body: { reason: 'user gave up' },
    });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('cancelled');
    expect(res.body.error).toEqual({ code: 'cancelled', message: 'user gave up' });
    const again = await h.call('POST', `${RQ}/${created.body.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('already_terminal');
    const bad = await h.call('POST', `${RQ}/${created.body.id}/cancel`, { body: { why: 1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_request');
  });

  it('retries a cancelled request as a new one (201); a pending one is 409', async () => {
    const created = await h.call('POST', RQ, { body: { kind: 'a', payload: [1, 2] } });
    const pending = await h.call('POST', `${RQ}/${created.body.id}/retry`);
    expect(pending.status).toBe(409);
    expect(pending.body.error.code).toBe('not_retryable');
    await h.call('POST', `${RQ}/${created.body.id}/cancel`);
    const retried = await h.call('POST', `${RQ}/${created.body.id}/retry`);
    expect(retried.status).toBe(201);
    expect(retried.body.id).not.toBe(created.body.id);
    expect(retried.body).toMatchObject({ status: 'pending', kind: 'a', payload: [1, 2] });
    expect(h.hub.noted.slice(-2)).toEqual(['cancelled', 'pending']);
  });
});

describe('workspaces', () => {
  it('answers another workspace’s id exactly like a missing one', async () => {
    const created = await h.call('POST', RQ, { body: { kind: 'a' } });
    const id = created.body.id;
    const missing = await h.call('GET', `${RQ}/01J00000000000000000000000`, {
      token: h.otherClient,
    });
    for (const [method, suffix] of [
      ['GET', ''],
      ['GET', '?wait_ms=10'],
      ['POST', '/cancel'],
      ['POST', '/retry'],
    ] as const) {
      const res = await h.call(method, `${RQ}/${id}${suffix}`, { token: h.otherClient });
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
      expect(res.body).toEqual(missing.body);
    }
    const list = await h.call('GET', RQ, { token: h.otherClient });
    expect(list.status).toBe(200);
    expect(list.body.requests).toEqual([]);
    const still = await h.call('GET', `${RQ}/${id}`);
    expect(still.body.status).toBe('pending');
  });

  it('lists and gets runtimes of the caller’s workspace only', async () => {
    await h.call('POST', RQ, { body: { kind: 'a' } });
    const all = await h.call('GET', '/v1/runtimes');
    expect(all.status).toBe(200);
    expect(all.body.runtimes.map((r: { id: string }) => r.id)).toEqual(['laptop']);
    const one = await h.call('GET', '/v1/runtimes/laptop');
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ id: 'laptop', pending: 1, running: 0 });
    const other = await h.call('GET', '/v1/runtimes', { token: h.otherClient });
    expect(other.body.runtimes).toEqual([]);
    const hidden = await h.call('GET', '/v1/runtimes/laptop', { token: h.otherClient });
    expect(hidden.status).toBe(404);
    expect(hidden.body.error.code).toBe('not_found');
  });
});
