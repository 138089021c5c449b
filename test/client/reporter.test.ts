/**
 * The HTTP reporter: which answers end a report and which are retried, and pending
 * reports keyed by (id, epoch). A gate (a small HTTP server in front of a real node)
 * plays a proxy's answers (429 with Retry-After, 408, a bare 404, a 502 page) before it
 * lets a result through; websocket upgrades through it fail, so the daemon polls and
 * reports over HTTP.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../protocol/index.js';
import { parseRetryAfter, verdict } from '../../src/client/answers.js';
import { connectDaemon, type Daemon, type DaemonOptions } from '../../src/client/daemon.js';
import { type Report, Reporter } from '../../src/client/reporter.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken, daemonToken } from '../helpers/node.js';

const { defer, node } = stopAfterEach();

type Scripted = (res: ServerResponse) => void;
type Held = { path: string; body: unknown; res: ServerResponse };

/** An HTTP server the test starts and stops; `handle` answers every request. */
async function server(
  handle: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void,
): Promise<string> {
  const srv = http.createServer((req, res) => {
    req.on('error', () => {}); // a call the daemon gave up on resets the connection
    res.on('error', () => {});
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks)));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  defer(async () => {
    srv.closeAllConnections();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  });
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

/**
 * A gate in front of `target`: result calls are answered by `script` (one entry per
 * call) until it runs out, then forwarded like everything else. Upgrades are not served.
 */
async function gate(target: string, script: Scripted[], renewScript: Scripted[] = []) {
  const results: number[] = [];
  const renews: number[] = [];
  const url = await server(async (req, res, body) => {
    const [calls, scripts] = req.url?.endsWith('/result')
      ? [results, script]
      : req.url?.endsWith('/renew')
        ? [renews, renewScript]
        : [null, []];
    if (calls) {
      calls.push(Date.now());
      const scripted = scripts.shift();
      if (scripted) {
        scripted(res);
        return;
      }
    }
    let upstream: Response;
    let text: string;
    try {
      upstream = await fetch(`${target}${req.url}`, {
        method: req.method,
        headers: {
          authorization: req.headers.authorization ?? '',
          'content-type': req.headers['content-type'] ?? 'application/json',
        },
        body: req.method === 'GET' ? undefined : body,
      });
      text = await upstream.text();
    } catch {
      // The node is gone (the test ended while the daemon still called): a proxy's 502.
      res.writeHead(502).end();
      return;
    }
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? '' });
    res.end(text);
  });
  return { url, results, renews };
}

const hubError = (status: number, code: string, headers: Record<string, string> = {}) =>
  ((res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ error: { code, message: code } }));
  }) satisfies Scripted;

const bare = (status: number, text: string, type = 'text/plain') =>
  ((res) => {
    res.writeHead(status, { 'content-type': type });
    res.end(text);
  }) satisfies Scripted;

async function pollingDaemon(
  url: string,
  runtime: string,
  handlers: DaemonOptions['handlers'] = { echo: (payload) => payload },
): Promise<Daemon> {
  const d = connectDaemon({
    url,
    token: await daemonToken(runtime),
    pollIntervalMs: 100,
    socketFailuresBeforePolling: 1,
    backoff: { initialMs: 20, maxMs: 50 },
    closeTimeoutMs: 500,
    handlers,
  });
  defer(() => d.close());
  return d;
}

function nextReported(d: Daemon, id: string, timeoutMs = 10_000) {
  return new Promise<{ epoch: number; accepted: boolean }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no report for ${id}`)), timeoutMs);
    d.on('reported', (r) => {
      if (r.id !== id) return;
      clearTimeout(timer);
      resolve(r);
    });
  });
}

async function create(n: { url: string }, runtime: string, payload: unknown): Promise<string> {
  const res = await api(n, 'POST', `/v1/runtimes/${runtime}/requests`, {
    token: await clientToken(),
    body: { kind: 'echo', payload },
  });
  expect(res.status).toBe(201);
  return res.body.id as string;
}

async function record(n: { url: string }, runtime: string, id: string) {
  const res = await api(n, 'GET', `/v1/runtimes/${runtime}/requests/${id}`, {
    token: await clientToken(),
  });
  return res.body;
}

async function until(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('answers that are not the hub refusing the report', () => {
  it("retries a proxy's 429 (after Retry-After), 408, a bare 404 and a 502 page, then is accepted", async () => {
    const n = await node();
    const g = await gate(n.url, [
      hubError(429, 'limit_exceeded', { 'retry-after': '1' }),
      bare(408, ''),
      bare(404, 'Not Found'),
      bare(502, '<html>bad gateway</html>', 'text/html'),
    ]);
    const d = await pollingDaemon(g.url, 'rep-retry');
    const id = await create(n, 'rep-retry', { n: 1 });
    const reported = await nextReported(d, id);
    expect(reported.accepted).toBe(true);
    expect(g.results).toHaveLength(5);
    // Retry-After: 1 held the second attempt back at least (about) a second.
    expect((g.results[1] as number) - (g.results[0] as number)).toBeGreaterThanOrEqual(950);
    expect(await record(n, 'rep-retry', id)).toMatchObject({
      status: 'completed',
      result: { n: 1 },
    });
  });

  it("ends the report on the hub's own 404 not_found: the request is gone", async () => {
    const n = await node();
    const g = await gate(n.url, [hubError(404, 'not_found')]);
    const d = await pollingDaemon(g.url, 'rep-gone');
    const id = await create(n, 'rep-gone', 1);
    expect(await nextReported(d, id)).toMatchObject({ accepted: false });
    expect(g.results).toHaveLength(1);
  });
});

describe('renewals over HTTP', () => {
  it("gives the attempt up on the hub's 404 not_found, not on a bare 404", async () => {
    const n = await node({ LEASE_MS: '600' });
    const g = await gate(n.url, [], [bare(404, 'Not Found'), hubError(404, 'not_found')]);
    let aborted = 0;
    const d = await pollingDaemon(g.url, 'rep-renew', {
      echo: (_p, ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = g.renews.length;
            resolve('aborted');
          });
        }),
    });
    const id = await create(n, 'rep-renew', 1);
    await until(() => aborted > 0, 'the handler to be aborted');
    expect(aborted).toBe(2); // the bare 404 was not taken as the end of the lease
    await until(() => d.inFlight === 0, 'the job to end');
    expect(g.results).toHaveLength(0); // a lost attempt reports nothing
    expect((await record(n, 'rep-renew', id)).status).not.toBe('completed');
  });
});

describe('answer classification', () => {
  it('reads the hub error body and Retry-After', () => {
    const body = (code: string) => ({ error: { code, message: code } });
    expect(verdict({ status: 200, body: {} })).toEqual({ kind: 'ok' });
    expect(verdict({ status: 409, body: body('lease_lost') })).toEqual({
      kind: 'final',
      code: 'lease_lost',
    });
    expect(verdict({ status: 404, body: body('not_found') }).kind).toBe('final');
    expect(verdict({ status: 404, body: 'Not Found' }).kind).toBe('retry');
    expect(verdict({ status: 409, body: body('something_new') }).kind).toBe('retry');
    expect(verdict({ status: 503, body: body('store_unavailable') }).kind).toBe('retry');
    expect(verdict({ status: 429, body: body('limit_exceeded'), retryAfterMs: 2000 })).toEqual({
      kind: 'retry',
      afterMs: 2000,
    });
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
  });
});

describe('pending reports keyed by (id, epoch)', () => {
  it('a late answer to an abandoned report does not settle the newer report for the id', async () => {
    const held: Held[] = [];
    const url = await server((req, res, body) => {
      held.push({ path: req.url ?? '', body: JSON.parse(body.toString()), res });
    });
    const answered: number[] = [];
    const reporter = new Reporter({
      http: async (path, body) => {
        const res = await fetch(`${url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const parsed: unknown = await res.json();
        answered.push(res.status);
        return { status: res.status, body: parsed };
      },
      socket: () => null,
      backoff: new Backoff(10, 50),
    });
    defer(async () => reporter.stop());
    const old: Report = { id: 'r1', epoch: 1, status: 'completed', result: 'old' };
    const newer: Report = { id: 'r1', epoch: 3, status: 'completed', result: 'new' };

    const first = reporter.report(old);
    await until(() => held.length === 1, 'the first result call');
    reporter.drop('r1', 1);
    expect(await first).toBe(false);

    const second = reporter.report(newer);
    await until(() => held.length === 2, 'the second result call');
    expect(held[1]?.body).toMatchObject({ epoch: 3 });
    // The abandoned call answers late; the reporter has handled it once `answered` shows it.
    hubError(409, 'lease_lost')(held[0]?.res as ServerResponse);
    await until(() => answered.length === 1, 'the late answer');
    held[1]?.res.writeHead(200, { 'content-type': 'application/json' });
    held[1]?.res.end(JSON.stringify({ request: { id: 'r1' } }));

    const settled = await Promise.race([
      second,
      new Promise<string>((r) => setTimeout(() => r('never settled'), 3_000)),
    ]);
    expect(settled).toBe(true);
  });
});
