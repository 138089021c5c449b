/**
 * Bad input against a real node over real sockets (DESIGN.md section 4: the error table
 * is the contract). Every case checks the HTTP status or the websocket close code AND
 * the error code. HTTP cases and websocket cases run on the embedded store and on a
 * private redis-server.
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { Auth } from '../../src/auth.js';
import type { SwitchboardNode } from '../../src/node.js';
import {
  api,
  clientToken,
  daemonToken,
  FrameSocket,
  readyDaemon,
  SECRET,
  STORE_BACKENDS,
  startTestNode,
  withUncaught,
} from '../helpers/node.js';

const SMALL_PAYLOAD = 4096;

const forger = new Auth('another-secret-0123456789-abcdefghijklmnopqrstuv');

/** A token signed with the right secret whose `exp` passed an hour ago. */
function expiredToken(claims: Record<string, string>): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('x')
    .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
    .sign(new TextEncoder().encode(SECRET));
}

/** A well-signed, unexpired token whose claims are not valid (no such role). */
function badClaimsToken(): Promise<string> {
  return new SignJWT({ ws: 'acme', role: 'admin' })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('x')
    .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
    .sign(new TextEncoder().encode(SECRET));
}

function expectError(res: { status: number; body: any }, status: number, code: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body).toEqual({
    error: expect.objectContaining({ code, message: expect.any(String) }),
  });
}

/**
 * Tries a websocket upgrade that must be refused: resolves with the HTTP status and the
 * parsed error body; fails if a socket opens.
 */
function refusedUpgrade(
  node: { url: string },
  path: string,
  token?: string,
  query = '',
): Promise<{ status: number; body: any }> {
  const ws = new WebSocket(
    `${node.url.replace(/^http/, 'ws')}${path}${query}`,
    token ? { headers: { authorization: `Bearer ${token}` } } : {},
  );
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate();
      reject(new Error(`upgrade to ${path} was accepted`));
    });
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // left as text: the assertion shows it
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', reject);
    });
    ws.on('error', () => {});
  });
}

/** JSON arrays nested `depth` deep: 2 bytes a level. */
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
/** Deep enough to overflow a recursive validator; 20 KB, far under MAX_PAYLOAD_BYTES. */
const DEEP = 10_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe.each(STORE_BACKENDS)('bad input (%s store)', (_name, backend) => {
  let node: SwitchboardNode;
  /** The same backend, MAX_PAYLOAD_BYTES 4096. */
  let small: SwitchboardNode;
  let stopBackend: () => Promise<void>;
  let acme: string;
  let globex: string;
  let daemon: string;

  beforeAll(async () => {
    const b = await backend();
    stopBackend = b.stop;
    node = await startTestNode(b.env);
    small = await startTestNode({ ...b.env, MAX_PAYLOAD_BYTES: String(SMALL_PAYLOAD) });
    acme = await clientToken('acme');
    globex = await clientToken('globex');
    daemon = await daemonToken('laptop', 'acme');
  });
  afterAll(async () => {
    await small?.kill();
    await node?.kill();
    await stopBackend?.();
  });

  describe('HTTP', () => {
    it('answers malformed JSON with 400 invalid_request', async () => {
      for (const raw of ['{"kind":', 'not json', '', '{"kind":"echo"}}']) {
        const res = await api(node, 'POST', '/v1/runtimes/laptop/requests', {
          token: acme,
          raw,
          headers: { 'content-type': 'application/json' },
        });
        expectError(res, 400, 'invalid_request');
      }
      const hb = await api(node, 'POST', '/v1/daemon/heartbeat', { token: daemon, raw: '{max:1}' });
      expectError(hb, 400, 'invalid_request');
    });

    it('answers wrong types with 400 invalid_request and details naming the field', async () => {
      const res = await api(node, 'POST', '/v1/runtimes/laptop/requests', {
        token: acme,
        body: { kind: 'echo', priority: 'high' },
      });
      expectError(res, 400, 'invalid_request');
      expect(res.body.error.details).toEqual(
        expect.arrayContaining([expect.objectContaining({ path: ['priority'] })]),
      );
      const batch = await api(node, 'POST', '/v1/runtimes/laptop/requests/batch', {
        token: acme,
        body: { requests: [{ kind: 'ok' }, { kind: 'echo', max_attempts: 'three' }] },
      });
      expectError(batch, 400, 'invalid_request');
      expect(batch.body.error.details).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ path: ['requests', 1, 'max_attempts'] }),
        ]),
      );
      const result = await api(node, 'POST', '/v1/daemon/requests/abc/result', {
        token: daemon,
        body: { epoch: '1', status: 'completed' },
      });
      expectError(result, 400, 'invalid_request');
      expect(result.body.error.details.length).toBeGreaterThan(0);
    });

    it('answers an unknown field with 400 invalid_request and creates nothing', async () => {
      const rt = `unknown-field-${randomUUID().slice(0, 8)}`;
      const res = await api(node, 'POST', `/v1/runtimes/${rt}/requests`, {
        token: acme,
        body: { kind: 'echo', foo: 1 },
      });
      expectError(res, 400, 'invalid_request');
      expect(JSON.stringify(res.body.error.details)).toContain('foo');
      const renew = await api(node, 'POST', '/v1/daemon/requests/abc/renew', {
        token: daemon,
        body: { epoch: 1, extend_ms: 5 },
      });
      expectError(renew, 400, 'invalid_request');
      const list = await api(node, 'GET', `/v1/runtimes/${rt}/requests`, { token: acme });
      expect(list.status).toBe(200);
      expect(list.body.requests).toEqual([]);
    });

    it('answers a body over MAX_PAYLOAD_BYTES with 413 payload_too_large, with or without content-length', async () => {
      const rt = `too-big-${randomUUID().slice(0, 8)}`;
      const big = { kind: 'echo', payload: 'x'.repeat(8 * 1024) };
      const res = await api(small, 'POST', `/v1/runtimes/${rt}/requests`, {
        token: acme,
        body: big,
      });
      expectError(res, 413, 'payload_too_large');

      // Chunked (no content-length): the limit must hold while the body streams in.
      const bytes = new TextEncoder().encode(JSON.stringify(big));
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 1024) controller.enqueue(bytes.slice(i, i + 1024));
          controller.close();
        },
      });
      const chunked = await fetch(`${small.url}/v1/runtimes/${rt}/requests`, {
        method: 'POST',
        headers: { authorization: `Bearer ${acme}`, 'content-type': 'application/json' },
        body: stream,
        duplex: 'half',
      } as RequestInit);
      expectError({ status: chunked.status, body: await chunked.json() }, 413, 'payload_too_large');

      const daemonBig = await api(small, 'POST', '/v1/daemon/requests/abc/result', {
        token: daemon,
        body: { epoch: 1, status: 'completed', result: 'y'.repeat(8 * 1024) },
      });
      expectError(daemonBig, 413, 'payload_too_large');

      const list = await api(small, 'GET', `/v1/runtimes/${rt}/requests`, { token: acme });
      expect(list.body.requests).toEqual([]);
    });

    it('answers a deeply nested but small JSON body with a 4xx, never 500', async () => {
      const rt = `deep-${randomUUID().slice(0, 8)}`;
      const token = await daemonToken(rt);
      await api(node, 'POST', `/v1/runtimes/${rt}/requests`, { token: acme, body: { kind: 'x' } });
      const hb = await api(node, 'POST', '/v1/daemon/heartbeat', { token, body: { max: 1 } });
      const id = hb.body.requests[0].id as string;
      const cases: [string, string, string, number][] = [
        [`/v1/runtimes/${rt}/requests`, acme, `{"kind":"deep","payload":${nested(DEEP)}}`, 201],
        [
          `/v1/runtimes/${rt}/requests/batch`,
          acme,
          `{"requests":[{"kind":"deep","payload":${nested(DEEP)}}]}`,
          201,
        ],
        [
          `/v1/daemon/requests/${id}/result`,
          token,
          `{"epoch":1,"status":"completed","result":${nested(DEEP)}}`,
          200,
        ],
      ];
      const answers: string[] = [];
      for (const [path, bearer, raw, accepted] of cases) {
        const res = await api(node, 'POST', path, { token: bearer, raw });
        answers.push(
          `${path.split('/').pop()} -> ${res.status} ${JSON.stringify(res.body).slice(0, 80)}`,
        );
        // Storing it (2xx) or refusing it as invalid_request (400) are both fine; 500 is not.
        if (res.status !== accepted) {
          try {
            expectError(res, 400, 'invalid_request');
          } catch {
            answers[answers.length - 1] += '  <-- wrong';
          }
        }
      }
      expect(
        answers.filter((a) => a.endsWith('<-- wrong')),
        answers.join('\n'),
      ).toEqual([]);
    });

    it('answers a missing, malformed, forged, expired or ill-claimed token with 401 unauthorized', async () => {
      const path = '/v1/runtimes/laptop/requests';
      const body = { kind: 'echo' };
      const forged = await forger.sign({ sub: 'x', ws: 'acme', role: 'client' }, '1h');
      const expired = await expiredToken({ ws: 'acme', role: 'client' });
      const cases: Record<string, string>[] = [
        {},
        { authorization: 'Basic dXNlcjpwYXNz' },
        { authorization: 'Bearer' },
        { authorization: `Bearer ${forged}` },
        { authorization: `Bearer ${expired}` },
        { authorization: `Bearer ${await badClaimsToken()}` },
        { authorization: `Bearer ${acme.slice(0, -4)}AAAA` },
      ];
      const bodies = [];
      for (const headers of cases) {
        const res = await api(node, 'POST', path, { body, headers });
        expectError(res, 401, 'unauthorized');
        bodies.push(res.body);
      }
      // A caller cannot tell why: every 401 is the same body.
      expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);

      const expiredDaemon = await expiredToken({ ws: 'acme', role: 'daemon', rt: 'laptop' });
      const hb = await api(node, 'POST', '/v1/daemon/heartbeat', {
        token: expiredDaemon,
        body: {},
      });
      expectError(hb, 401, 'unauthorized');
      // HTTP routes do not take a token from the query string.
      const query = await api(node, 'GET', `/v1/runtimes?access_token=${acme}`);
      expectError(query, 401, 'unauthorized');
    });

    it('answers the wrong role with 403 forbidden', async () => {
      const create = await api(node, 'POST', '/v1/runtimes/laptop/requests', {
        token: daemon,
        body: { kind: 'echo' },
      });
      expectError(create, 403, 'forbidden');
      const list = await api(node, 'GET', '/v1/runtimes', { token: daemon });
      expectError(list, 403, 'forbidden');
      const hb = await api(node, 'POST', '/v1/daemon/heartbeat', { token: acme, body: {} });
      expectError(hb, 403, 'forbidden');
    });

    it("answers another workspace's request or runtime exactly like a missing one (404 not_found)", async () => {
      const rt = `secret-${randomUUID().slice(0, 8)}`;
      const created = await api(node, 'POST', `/v1/runtimes/${rt}/requests`, {
        token: acme,
        body: { kind: 'echo', payload: { secret: true } },
      });
      expect(created.status).toBe(201);
      const id = created.body.id as string;
      const missing = created.body.id.replace(/.$/, (c: string) => (c === 'Z' ? 'Y' : 'Z'));
      expect(missing).not.toBe(id);

      const theirRuntime = await api(node, 'GET', `/v1/runtimes/${rt}`, { token: globex });
      const noRuntime = await api(node, 'GET', `/v1/runtimes/nobody-${randomUUID().slice(0, 8)}`, {
        token: globex,
      });
      expectError(theirRuntime, 404, 'not_found');
      expect(theirRuntime.body).toEqual(noRuntime.body);
      const globexRuntimes = await api(node, 'GET', '/v1/runtimes', { token: globex });
      expect(globexRuntimes.body.runtimes.map((r: { id: string }) => r.id)).not.toContain(rt);
      const pairs: [string, string, unknown?][] = [
        ['GET', `/v1/runtimes/${rt}/requests/ID`],
        ['GET', `/v1/runtimes/${rt}/requests/ID?wait_ms=50`],
        ['POST', `/v1/runtimes/${rt}/requests/ID/cancel`, {}],
        ['POST', `/v1/runtimes/${rt}/requests/ID/retry`, {}],
      ];
      for (const [method, path, body] of pairs) {
        const theirs = await api(node, method, path.replace('ID', id), { token: globex, body });
        const nobody = await api(node, method, path.replace('ID', missing), {
          token: globex,
          body,
        });
        expectError(theirs, 404, 'not_found');
        expect(theirs.body, `${method} ${path}`).toEqual(nobody.body);
      }
      const globexList = await api(node, 'GET', `/v1/runtimes/${rt}/requests`, { token: globex });
      expect(globexList.body.requests).toEqual([]);

      // A daemon of another workspace with the same runtime name cannot report on it
      // either, and cannot tell it apart from a missing id.
      const globexDaemon = await daemonToken(rt, 'globex');
      const report = { epoch: 1, status: 'completed', result: 'stolen' };
      const theirs = await api(node, 'POST', `/v1/daemon/requests/${id}/result`, {
        token: globexDaemon,
        body: report,
      });
      const nobody = await api(node, 'POST', `/v1/daemon/requests/${missing}/result`, {
        token: globexDaemon,
        body: report,
      });
      expectError(theirs, 404, 'not_found');
      expect(theirs.body).toEqual(nobody.body);

      // acme's record is untouched.
      const still = await api(node, 'GET', `/v1/runtimes/${rt}/requests/${id}`, { token: acme });
      expect(still.body).toMatchObject({ id, status: 'pending', result: null });
    });

    it('leaves no trace of a refused cancel or retry: the runtime stays unknown (404, unlisted)', async () => {
      const rt = `ghost-${randomUUID().slice(0, 8)}`;
      const id = '01ARZ3NDEKTSV4RRFFQ69G5FAV';
      const before = await api(node, 'GET', `/v1/runtimes/${rt}`, { token: globex });
      expectError(before, 404, 'not_found');
      for (const action of ['cancel', 'retry']) {
        const res = await api(node, 'POST', `/v1/runtimes/${rt}/requests/${id}/${action}`, {
          token: globex,
          body: {},
        });
        expectError(res, 404, 'not_found');
        const after = await api(node, 'GET', `/v1/runtimes/${rt}`, { token: globex });
        expect(after, `a 404 ${action} registered a phantom runtime`).toEqual(before);
        const list = await api(node, 'GET', '/v1/runtimes', { token: globex });
        expect(list.body.runtimes.map((r: { id: string }) => r.id)).not.toContain(rt);
      }
    });

    it('answers a stale epoch on the daemon routes with 409 lease_lost and keeps the lease', async () => {
      const rt = `stale-${randomUUID().slice(0, 8)}`;
      const token = await daemonToken(rt, 'acme');
      const created = await api(node, 'POST', `/v1/runtimes/${rt}/requests`, {
        token: acme,
        body: { kind: 'echo' },
      });
      const hb = await api(node, 'POST', '/v1/daemon/heartbeat', { token, body: { max: 1 } });
      expect(hb.status).toBe(200);
      expect(hb.body.requests).toEqual([
        expect.objectContaining({ id: created.body.id, epoch: 1 }),
      ]);
      const id = created.body.id as string;

      for (const epoch of [0, 2]) {
        const result = await api(node, 'POST', `/v1/daemon/requests/${id}/result`, {
          token,
          body: { epoch, status: 'completed', result: 'late' },
        });
        expectError(result, 409, 'lease_lost');
        const renew = await api(node, 'POST', `/v1/daemon/requests/${id}/renew`, {
          token,
          body: { epoch },
        });
        expectError(renew, 409, 'lease_lost');
      }
      const read = await api(node, 'GET', `/v1/runtimes/${rt}/requests/${id}`, { token: acme });
      expect(read.body).toMatchObject({ status: 'running', epoch: 1, result: null });
      // The holder of the right epoch still can.
      const ok = await api(node, 'POST', `/v1/daemon/requests/${id}/result`, {
        token,
        body: { epoch: 1, status: 'completed', result: 'on time' },
      });
      expect(ok.status).toBe(200);
      // Once terminal, a further report at another epoch is lease_lost too.
      const after = await api(node, 'POST', `/v1/daemon/requests/${id}/result`, {
        token,
        body: { epoch: 1, status: 'failed', error: { code: 'x', message: 'y' } },
      });
      expectError(after, 409, 'lease_lost');
    });

    it('answers an invalid runtime id in the path with 400 invalid_request', async () => {
      const bad = ['bad%20id', 'a%2Fb', 'x'.repeat(129), '%C3%A9t%C3%A9', 'a%00b'];
      for (const rt of bad) {
        const create = await api(node, 'POST', `/v1/runtimes/${rt}/requests`, {
          token: acme,
          body: { kind: 'echo' },
        });
        expectError(create, 400, 'invalid_request');
        expect(create.body.error.details).toEqual([expect.objectContaining({ path: ['runtime'] })]);
        const get = await api(node, 'GET', `/v1/runtimes/${rt}`, { token: acme });
        expectError(get, 400, 'invalid_request');
        const list = await api(node, 'GET', `/v1/runtimes/${rt}/requests`, { token: acme });
        expectError(list, 400, 'invalid_request');
      }
    });
  });

  describe('daemon websocket', () => {
    it('refuses the upgrade with 401 unauthorized for a missing, forged or expired token; no socket opens', async () => {
      const before = node.hub.dispatcher.connections.length;
      const forged = await forger.sign(
        { sub: 'x', ws: 'acme', role: 'daemon', rt: 'laptop' },
        '1h',
      );
      const expired = await expiredToken({ ws: 'acme', role: 'daemon', rt: 'laptop' });
      for (const token of [undefined, forged, expired, await badClaimsToken()]) {
        const refused = await refusedUpgrade(node, '/v1/daemon/ws', token);
        expectError(refused, 401, 'unauthorized');
        await expect(FrameSocket.daemon(node, token ?? '')).rejects.toMatchObject({ status: 401 });
      }
      // ?access_token= is checked the same way.
      const viaQuery = await refusedUpgrade(
        node,
        '/v1/daemon/ws',
        undefined,
        `?access_token=${forged}`,
      );
      expectError(viaQuery, 401, 'unauthorized');
      expect(node.hub.dispatcher.connections.length).toBeLessThanOrEqual(before);
    });

    it('refuses a token of the wrong role with 403 forbidden, on either socket', async () => {
      const clientOnDaemon = await refusedUpgrade(node, '/v1/daemon/ws', acme);
      expectError(clientOnDaemon, 403, 'forbidden');
      await expect(FrameSocket.daemon(node, acme)).rejects.toMatchObject({ status: 403 });
      const daemonOnClient = await refusedUpgrade(node, '/v1/ws', daemon);
      expectError(daemonOnClient, 403, 'forbidden');
      await expect(FrameSocket.client(node, daemon)).rejects.toMatchObject({ status: 403 });
    });

    it('reports an unknown frame type and keeps the socket open (it still gets pushes)', async () => {
      const rt = `unknown-frame-${randomUUID().slice(0, 8)}`;
      const d = await FrameSocket.daemon(node, await daemonToken(rt));
      await d.next('hello');
      d.send({ type: 'subscribe', runtime: rt });
      expect(await d.next('error')).toEqual({
        type: 'error',
        code: 'invalid_message',
        message: expect.any(String),
      });
      d.send({ type: 'ready', capacity: 1 });
      const created = await api(node, 'POST', `/v1/runtimes/${rt}/requests`, {
        token: acme,
        body: { kind: 'echo' },
      });
      const pushed = await d.next('request');
      expect(pushed.request).toMatchObject({ id: created.body.id, epoch: 1 });
      await d.close();
    });

    it('reports malformed JSON, a binary frame and invalid known frames with error frames or a nack', async () => {
      const rt = `bad-json-${randomUUID().slice(0, 8)}`;
      const d = await FrameSocket.daemon(node, await daemonToken(rt));
      await d.next('hello');
      d.send('{"type":"ready",');
      expect(await d.next('error')).toMatchObject({ code: 'invalid_message' });
      d.ws.send(Buffer.from(JSON.stringify({ type: 'ready', capacity: 1 })), { binary: true });
      expect(await d.next('error')).toMatchObject({ code: 'invalid_message' });
      d.send({ type: 'ready', capacity: -1 });
      expect(await d.next('error')).toMatchObject({ code: 'invalid_message' });
      d.send({ type: 'ready', capacity: 1, extra: true });
      expect(await d.next('error')).toMatchObject({ code: 'invalid_message' });
      // A bad result that names its request is refused for that request.
      d.send({ type: 'result', id: 'x', epoch: 1, status: 'failed' });
      expect(await d.next('nack')).toMatchObject({
        id: 'x',
        epoch: 1,
        code: 'invalid_message',
        retry: false,
      });
      d.send('null');
      expect(await d.next('error')).toMatchObject({ code: 'invalid_message' });
      // None of them was a ready: nothing is pushed until a valid one arrives.
      const created = await api(node, 'POST', `/v1/runtimes/${rt}/requests`, {
        token: acme,
        body: { kind: 'echo' },
      });
      await sleep(100);
      expect(d.all('request')).toEqual([]);
      d.send({ type: 'ready', capacity: 1 });
      expect((await d.next('request')).request.id).toBe(created.body.id);
      expect(d.ws.readyState).toBe(WebSocket.OPEN);
      await d.close();
    });

    it('answers a deeply nested but small result frame with a frame, not an uncaught exception', async () => {
      const rt = `deep-frame-${randomUUID().slice(0, 8)}`;
      const d = await FrameSocket.daemon(node, await daemonToken(rt));
      await d.next('hello');
      const { uncaught } = await withUncaught(async () => {
        d.send(
          `{"type":"result","id":"deep","epoch":1,"status":"completed","result":${nested(DEEP)}}`,
        );
        d.send({ type: 'renew', id: 'after-deep', epoch: 0 });
        await d.next((f) => f.id === 'after-deep', 2_000).catch(() => undefined);
      });
      const names = uncaught.map((e) =>
        e instanceof Error ? `${e.name}: ${e.message}` : String(e),
      );
      expect(
        names,
        'the node threw from the socket handler (this kills a production node)',
      ).toEqual([]);
      // Accepted (nack: no such lease) or refused (error invalid_message): either is a frame.
      expect(d.frames.filter((f) => f.type !== 'hello').map((f) => f.type)).toEqual([
        expect.stringMatching(/^(nack|error)$/),
        'lease_lost',
      ]);
      expect(d.ws.readyState).toBe(WebSocket.OPEN);
      await d.close();
    });

    it('closes the socket with 1008 on a flood of invalid frames', async () => {
      const d = await FrameSocket.daemon(
        node,
        await daemonToken(`flood-${randomUUID().slice(0, 8)}`),
      );
      await d.next('hello');
      for (let i = 0; i < 30; i++) d.send(`garbage ${i}`);
      const closed = await d.closed;
      expect(closed.code).toBe(1008);
      const errors = d.all('error');
      expect(errors.length).toBeGreaterThan(0);
      expect(errors.length).toBeLessThanOrEqual(10);
      for (const e of errors) expect(e).toMatchObject({ code: 'invalid_message' });
    });

    it('survives clients that reset the connection in the middle of the upgrade', async () => {
      const token = await daemonToken(`reset-${randomUUID().slice(0, 8)}`);
      const { port } = new URL(node.url);
      const head =
        `GET /v1/daemon/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${token}\r\n\r\n`;
      // Reset right after the request, while the node is still checking the token.
      const { uncaught } = await withUncaught(async () => {
        await Promise.all(
          Array.from(
            { length: 20 },
            (_, i) =>
              new Promise<void>((resolve) => {
                const s = net.connect(Number(port), '127.0.0.1', () => {
                  s.write(head, () => setTimeout(() => s.resetAndDestroy(), i % 3));
                });
                s.on('error', () => {});
                s.on('close', () => resolve());
              }),
          ),
        );
        await sleep(50); // let the node see the resets (it has no event to await here)
      });
      expect(uncaught, 'a reset during the upgrade crashed the node').toEqual([]);
      expect((await api(node, 'GET', '/healthz')).status).toBe(200);
      const d = await FrameSocket.daemon(node, token);
      expect(await d.next('hello')).toMatchObject({ type: 'hello' });
      await d.close();
    });

    it('closes the socket with 1009 on a frame over MAX_PAYLOAD_BYTES, and the node carries on', async () => {
      const rt = `huge-frame-${randomUUID().slice(0, 8)}`;
      const token = await daemonToken(rt);
      const d = await FrameSocket.daemon(small, token);
      const hello = await d.next('hello');
      expect(hello.max_payload_bytes).toBe(SMALL_PAYLOAD);
      d.send({ type: 'result', id: 'x', epoch: 1, status: 'completed', result: 'z'.repeat(8192) });
      expect((await d.closed).code).toBe(1009);

      expect((await api(small, 'GET', '/healthz')).status).toBe(200);
      const again = await readyDaemon(small, token, 1);
      const created = await api(small, 'POST', `/v1/runtimes/${rt}/requests`, {
        token: acme,
        body: { kind: 'echo' },
      });
      expect((await again.next('request')).request.id).toBe(created.body.id);
      await again.close();
    });
  });

  describe('client websocket', () => {
    it('refuses a missing, forged or expired token with 401 unauthorized', async () => {
      const forged = await forger.sign({ sub: 'x', ws: 'acme', role: 'client' }, '1h');
      const expired = await expiredToken({ ws: 'acme', role: 'client' });
      for (const token of [undefined, forged, expired]) {
        expectError(await refusedUpgrade(node, '/v1/ws', token), 401, 'unauthorized');
        await expect(FrameSocket.client(node, token ?? '')).rejects.toMatchObject({ status: 401 });
      }
    });

    it('reports an unknown frame and keeps the socket open', async () => {
      const c = await FrameSocket.client(node, acme);
      c.send({ type: 'ready', capacity: 1 });
      expect(await c.next('error')).toEqual({
        type: 'error',
        code: 'invalid_message',
        message: expect.any(String),
      });
      c.send('{"type":');
      expect(await c.next('error')).toMatchObject({ code: 'invalid_message' });
      c.ws.send(Buffer.from('{"type":"subscribe","runtime":"laptop"}'), { binary: true });
      expect(await c.next('error')).toMatchObject({ code: 'invalid_message' });
      c.send({ type: 'subscribe', runtime: 'laptop' });
      expect(await c.next('snapshot')).toMatchObject({ runtime: 'laptop' });
      await c.close();
    });

    it('reports a subscribe with an invalid runtime id or request ids', async () => {
      const c = await FrameSocket.client(node, acme);
      for (const frame of [
        { type: 'subscribe', runtime: 'bad id' },
        { type: 'subscribe', runtime: '' },
        { type: 'subscribe', runtime: 'x'.repeat(129) },
        { type: 'subscribe', runtime: 'a/b' },
        { type: 'subscribe', runtime: 42 },
        { type: 'subscribe', runtime: 'laptop', requests: [] },
        { type: 'subscribe', runtime: 'laptop', requests: 'all' },
        { type: 'unsubscribe', runtime: 'bad id' },
      ]) {
        c.send(frame);
        const error = await c.next('error');
        expect(error, JSON.stringify(frame)).toMatchObject({ code: 'invalid_message' });
      }
      expect(c.all('snapshot')).toEqual([]);
      expect(c.ws.readyState).toBe(WebSocket.OPEN);
      await c.close();
    });

    it("shows a subscriber of another workspace's runtime name only its own workspace", async () => {
      const rt = `shared-name-${randomUUID().slice(0, 8)}`;
      // acme has a connected daemon and work on `rt`.
      const acmeDaemon = await readyDaemon(node, await daemonToken(rt, 'acme'), 1);
      const running = await api(node, 'POST', `/v1/runtimes/${rt}/requests`, {
        token: acme,
        body: { kind: 'echo', payload: 'acme secret' },
      });
      await acmeDaemon.next('request');
      const pending = await api(node, 'POST', `/v1/runtimes/${rt}/requests`, {
        token: acme,
        body: { kind: 'echo', payload: 'acme secret 2' },
      });

      const spy = await FrameSocket.client(node, globex);
      spy.send({ type: 'subscribe', runtime: rt });
      spy.send({ type: 'subscribe', runtime: rt, requests: [running.body.id, pending.body.id] });
      const snapshot = await spy.next('snapshot');
      expect(snapshot.runtime).toBe(rt);
      expect(snapshot.requests).toEqual([]);
      expect(snapshot.runtime_info).toMatchObject({
        id: rt,
        online: false,
        connections: [],
        pending: 0,
        running: 0,
      });
      const second = await spy.next('snapshot');
      expect(second.requests).toEqual([]);

      // acme's own subscriber is the control: it sees the change; globex's never does.
      const own = await FrameSocket.client(node, acme);
      own.send({ type: 'subscribe', runtime: rt });
      const ownSnapshot = await own.next('snapshot');
      expect(ownSnapshot.requests.map((r: { id: string }) => r.id).sort()).toEqual(
        [running.body.id, pending.body.id].sort(),
      );
      expect(ownSnapshot.runtime_info).toMatchObject({ online: true, pending: 1, running: 1 });
      const request = acmeDaemon.all('request')[0]!.request as { id: string; epoch: number };
      acmeDaemon.send({
        type: 'result',
        id: request.id,
        epoch: request.epoch,
        status: 'completed',
        result: 'acme secret result',
      });
      await own.next((f) => f.type === 'request' && f.request.status === 'completed');
      await acmeDaemon.close();
      await own.next('runtime');
      await sleep(200);
      expect(spy.frames.filter((f) => f.type !== 'snapshot')).toEqual([]);
      expect(JSON.stringify(spy.frames)).not.toContain('acme');
      await spy.close();
      await own.close();
    });
  });
});
