/** Middleware and ops: auth and roles, body limit, draining, errors, request ids, CORS, ops routes. */
import { SignJWT } from 'jose';
import { beforeEach, describe, expect, it } from 'vitest';
import { Auth } from '../../src/auth.js';
import { StoreError } from '../../stores/errors.js';
import { type Harness, harness, MAX_PAYLOAD_BYTES, SECRET } from './harness.js';

const RQ = '/v1/runtimes/laptop/requests';
let h: Harness;
beforeEach(async () => {
  h = await harness();
});

describe('auth', () => {
  it('answers 401 for a missing, malformed, forged or expired token, all alike', async () => {
    const forged = await new Auth('another-secret-another-secret-12345678').sign(
      { sub: 'alice', ws: 'acme', role: 'client' },
      '1h',
    );
    const expired = await new SignJWT({ ws: 'acme', role: 'client' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(SECRET));
    const bodies: unknown[] = [];
    const cases: Record<string, string>[] = [
      {},
      { authorization: 'Basic YWxpY2U6c2VjcmV0' },
      { authorization: 'Bearer' },
      { authorization: 'Bearer not.a.jwt' },
      { authorization: `Bearer ${forged}` },
      { authorization: `Bearer ${expired}` },
    ];
    for (const headers of cases) {
      const res = await h.call('GET', RQ, { token: null, headers });
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('unauthorized');
      bodies.push(res.body);
    }
    expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
  });

  it('does not take a token from the query string on HTTP routes', async () => {
    const res = await h.call('GET', `${RQ}?access_token=${h.client}`, { token: null });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthorized');
  });

  it('answers 403 for the wrong role', async () => {
    for (const path of [RQ, '/v1/runtimes', '/v1/runtimes/laptop']) {
      const res = await h.call('GET', path, { token: h.daemon });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
    }
    const res = await h.call('POST', '/v1/daemon/heartbeat', { token: h.client, body: {} });
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe('forbidden');
  });
});

describe('body limit', () => {
  it('answers 413 payload_too_large over MAX_PAYLOAD_BYTES, with or without content-length', async () => {
    const body = JSON.stringify({ kind: 'a', payload: 'x'.repeat(MAX_PAYLOAD_BYTES) });
    const declared = await h.call('POST', RQ, {
      raw: body,
      headers: { 'content-length': String(Buffer.byteLength(body)) },
    });
    expect(declared.status).toBe(413);
    expect(declared.body.error.code).toBe('payload_too_large');
    const streamed = await h.app.request(RQ, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.client}` },
      body: new Blob([body]).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(((await streamed.json()) as { error: { code: string } }).error.code).toBe(
      'payload_too_large',
    );
    const batch = await h.call('POST', `${RQ}/batch`, {
      body: {
        requests: Array.from({ length: 100 }, () => ({ kind: 'a', payload: 'y'.repeat(50) })),
      },
    });
    expect(batch.status).toBe(413);
    expect(batch.body.error.code).toBe('payload_too_large');
    expect(h.hub.noted).toHaveLength(0);
  });

  it('accepts a body just under the limit', async () => {
    const res = await h.call('POST', RQ, { body: { kind: 'a', payload: 'x'.repeat(3000) } });
    expect(res.status).toBe(201);
  });
});

describe('draining', () => {
  it('answers 503 draining on /v1, while health answers and readiness says 503', async () => {
    h.hub.draining = true;
    for (const [method, path, token] of [
      ['POST', RQ, h.client],
      ['GET', '/v1/runtimes', h.client],
      ['POST', '/v1/daemon/heartbeat', h.daemon],
      ['GET', RQ, null],
    ] as const) {
      const res = await h.call(method, path, { token, body: method === 'POST' ? {} : undefined });
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('draining');
      expect(res.headers.get('retry-after')).toBe('1');
    }
    const health = await h.call('GET', '/healthz', { token: null });
    expect(health.status).toBe(200);
    const ready = await h.call('GET', '/readyz', { token: null });
    expect(ready.status).toBe(503);
    expect(ready.body.ok).toBe(false);
  });
});

describe('errors', () => {
  it('maps store_unavailable to 503 without leaking its message', async () => {
    h.store.get = async () => {
      throw new StoreError('store_unavailable', 'connect ECONNREFUSED 10.1.2.3:6379');
    };
    const res = await h.call('GET', `${RQ}/01J00000000000000000000000`);
    expect(res.status).toBe(503);
    expect(res.body.error).toEqual({
      code: 'store_unavailable',
      message: 'the store is unavailable',
    });
  });

  it('answers 500 internal for anything unexpected, never the stack', async () => {
    h.store.list = async () => {
      throw new TypeError('secret internals at /srv/app.js:1');
    };
    const res = await h.call('GET', RQ);
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: { code: 'internal', message: 'internal error' } });
  });

  it('answers 404 not_found for unknown routes', async () => {
    const res = await h.call('GET', '/v2/nothing', { token: null });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
    const method = await h.call('DELETE', `${RQ}/x`);
    expect(method.status).toBe(404);
    expect(method.body.error.code).toBe('not_found');
  });
});

describe('request ids and CORS', () => {
  it('echoes a sane x-request-id and makes one up otherwise', async () => {
    const echoed = await h.call('GET', '/healthz', { headers: { 'x-request-id': 'abc-123' } });
    expect(echoed.status).toBe(200);
    expect(echoed.headers.get('x-request-id')).toBe('abc-123');
    const made = await h.call('GET', RQ, { token: null, headers: { 'x-request-id': 'a b' } });
    expect(made.status).toBe(401);
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers preflights for configured origins only', async () => {
    const cors = await harness({ CORS_ORIGINS: 'https://app.example.com' });
    const preflight = await cors.app.request(RQ, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example.com',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    const res = await cors.call('GET', RQ, { headers: { origin: 'https://evil.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const none = await h.call('GET', RQ, { headers: { origin: 'https://app.example.com' } });
    expect(none.status).toBe(200);
    expect(none.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('ops', () => {
  it('answers /healthz, /readyz, /metrics and /', async () => {
    const health = await h.call('GET', '/healthz', { token: null });
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ ok: true });
    const ready = await h.call('GET', '/readyz', { token: null });
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ok: true, checks: { store: true } });
    const metrics = await h.call('GET', '/metrics', { token: null });
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(metrics.body).toBe('up 1\n');
    const page = await h.call('GET', '/', { token: null });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
  });

  it('answers /readyz 503 when a check fails or throws', async () => {
    const down = await harness(
      {},
      { ready: async () => ({ ok: false, checks: { store: 'down' } }) },
    );
    const res = await down.call('GET', '/readyz', { token: null });
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ ok: false, checks: { store: 'down' } });
    const broken = await harness(
      {},
      {
        ready: async () => {
          throw new Error('boom');
        },
      },
    );
    const thrown = await broken.call('GET', '/readyz', { token: null });
    expect(thrown.status).toBe(503);
    expect(thrown.body.ok).toBe(false);
  });

  it('serves an OpenAPI 3.1 document listing every route, with resolvable refs', async () => {
    const res = await h.call('GET', '/openapi.json', { token: null });
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/runtimes',
        '/v1/runtimes/{runtime}',
        '/v1/runtimes/{runtime}/requests',
        '/v1/runtimes/{runtime}/requests/batch',
        '/v1/runtimes/{runtime}/requests/{id}',
        '/v1/runtimes/{runtime}/requests/{id}/cancel',
        '/v1/runtimes/{runtime}/requests/{id}/retry',
        '/v1/daemon/heartbeat',
        '/v1/daemon/requests/{id}/result',
        '/v1/daemon/requests/{id}/renew',
        '/healthz',
        '/readyz',
        '/metrics',
      ]),
    );
    const create = doc.paths['/v1/runtimes/{runtime}/requests'].post;
    expect(create.requestBody.content['application/json'].schema.$ref).toBe(
      '#/components/schemas/CreateRequestBody',
    );
    expect(Object.keys(create.responses)).toEqual(
      expect.arrayContaining(['200', '201', '409', '413']),
    );
    const body = doc.components.schemas.CreateRequestBody;
    expect(body.additionalProperties).toBe(false);
    expect(body.required).toEqual(['kind']);
    expect(doc.components.schemas.Error.properties.error).toBeDefined();
    const text = JSON.stringify(doc);
    expect(text).not.toContain('__shared');
    for (const [, target] of text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) {
      expect(doc.components.schemas[target as string], target).toBeDefined();
    }
  });
});
