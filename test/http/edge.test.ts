/**
 * The HTTP edge of a real node (DESIGN.md section 7): exactly one Authorization header on
 * a call and on a websocket upgrade, the security headers on every answer (API, errors,
 * ops, dashboard, assets, upgrade refusals), no-store on the API, and the dev token's
 * page only for a local Host.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SwitchboardNode } from '../../src/node.js';
import { clientToken, daemonToken, startTestNode } from '../helpers/node.js';

interface RawAnswer {
  status: number;
  /** Header names in lower case; repeated ones joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `head` (request line and headers, CRLF-separated, no final blank line) as is, so a
 * test controls repeated headers. Reads the answer's head, then its body up to
 * Content-Length (a 101 has none: the socket is then dropped).
 */
function rawCall(port: number, head: string[], body = ''): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    const done = (answer: RawAnswer) => {
      socket.destroy();
      resolve(answer);
    };
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = data.subarray(0, end).toString().split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const at = line.indexOf(':');
        const name = line.slice(0, at).trim().toLowerCase();
        const value = line.slice(at + 1).trim();
        headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
      }
      const status = Number(statusLine?.split(' ')[1]);
      const rest = data.subarray(end + 4);
      const length = Number(headers['content-length'] ?? 0);
      if (status === 101 || rest.length >= length) {
        done({ status, headers, body: rest.subarray(0, length).toString() });
      }
    });
    socket.write(
      `${[...head, `Content-Length: ${Buffer.byteLength(body)}`].join('\r\n')}\r\n\r\n${body}`,
    );
  });
}

const UPGRADE = [
  'Connection: Upgrade',
  'Upgrade: websocket',
  'Sec-WebSocket-Version: 13',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
];

function expectSecurityHeaders(headers: Headers | Record<string, string>, what: string): void {
  const get = (name: string) =>
    headers instanceof Headers ? headers.get(name) : (headers[name] ?? null);
  expect(get('x-content-type-options'), what).toBe('nosniff');
  expect(get('referrer-policy'), what).toBe('no-referrer');
}

describe('the HTTP edge of a node', () => {
  let node: SwitchboardNode;
  let client: string;
  let host: string;
  beforeAll(async () => {
    node = await startTestNode({}, { devClientToken: 'dev-token-abc.def' });
    client = await clientToken();
    host = `127.0.0.1:${node.port}`;
  });
  afterAll(async () => {
    await node?.kill();
  });

  describe('exactly one Authorization header', () => {
    it('answers a call with two Authorization headers, even identical, 401', async () => {
      const call = (auth: string[]) =>
        rawCall(node.port, [
          'GET /v1/runtimes HTTP/1.1',
          `Host: ${host}`,
          'Connection: close',
          ...auth.map((a) => `Authorization: ${a}`),
        ]);
      const one = await call([`Bearer ${client}`]);
      expect(one.status).toBe(200);
      for (const two of [
        [`Bearer ${client}`, `Bearer ${client}`],
        [`Bearer ${client}`, 'Bearer not.a.token'],
        ['Bearer not.a.token', `Bearer ${client}`],
      ]) {
        const answer = await call(two);
        expect(answer.status).toBe(401);
        expect(JSON.parse(answer.body).error.code).toBe('unauthorized');
      }
    });

    it('refuses a websocket upgrade with two Authorization headers, even identical, 401', async () => {
      const daemon = await daemonToken();
      const upgrade = (auth: string[]) =>
        rawCall(node.port, [
          'GET /v1/daemon/ws HTTP/1.1',
          `Host: ${host}`,
          ...UPGRADE,
          ...auth.map((a) => `Authorization: ${a}`),
        ]);
      const one = await upgrade([`Bearer ${daemon}`]);
      expect(one.status).toBe(101);
      for (const two of [
        [`Bearer ${daemon}`, `Bearer ${daemon}`],
        [`Bearer ${daemon}`, 'Bearer forged'],
      ]) {
        const refused = await upgrade(two);
        expect(refused.status).toBe(401);
        expect(JSON.parse(refused.body).error.code).toBe('unauthorized');
        expectSecurityHeaders(refused.headers, 'upgrade refusal');
      }
    });
  });

  describe('headers on every answer', () => {
    it('API answers and API errors: nosniff, no-referrer, no-store', async () => {
      const auth = { authorization: `Bearer ${client}` };
      const answers: [string, Response][] = [
        [
          'create',
          await fetch(`${node.url}/v1/runtimes/laptop/requests`, {
            method: 'POST',
            headers: { ...auth, 'content-type': 'application/json' },
            body: JSON.stringify({ kind: 'k' }),
          }),
        ],
        ['list runtimes', await fetch(`${node.url}/v1/runtimes`, { headers: auth })],
        [
          '404 request',
          await fetch(`${node.url}/v1/runtimes/laptop/requests/nope`, { headers: auth }),
        ],
        ['400', await fetch(`${node.url}/v1/runtimes/laptop/requests?limit=x`, { headers: auth })],
        ['401', await fetch(`${node.url}/v1/runtimes`)],
        ['403', await fetch(`${node.url}/v1/daemon/heartbeat`, { method: 'POST', headers: auth })],
      ];
      for (const [what, res] of answers) {
        await res.text();
        expectSecurityHeaders(res.headers, what);
        expect(res.headers.get('cache-control'), what).toBe('no-store');
      }
      expect(answers[0]?.[1].status).toBe(201);
      expect(answers[4]?.[1].status).toBe(401);
    });

    it('ops routes, 404s, the dashboard and its assets', async () => {
      for (const path of [
        '/healthz',
        '/readyz',
        '/metrics',
        '/openapi.json',
        '/no/such/route',
        '/',
        '/ui/app.js',
        '/ui/style.css',
        '/client/browser.js',
      ]) {
        const res = await fetch(`${node.url}${path}`);
        await res.text();
        expectSecurityHeaders(res.headers, path);
      }
    });

    it('websocket upgrade refusals (no such endpoint, no token, wrong role)', async () => {
      const head = (path: string, extra: string[] = []) =>
        rawCall(node.port, [`GET ${path} HTTP/1.1`, `Host: ${host}`, ...UPGRADE, ...extra]);
      const refusals = [
        await head('/v1/nowhere'),
        await head('/v1/ws'),
        await head('/v1/ws', [`Authorization: Bearer ${await daemonToken()}`]),
      ];
      expect(refusals.map((r) => r.status)).toEqual([404, 401, 403]);
      for (const r of refusals) expectSecurityHeaders(r.headers, `upgrade ${r.status}`);
    });
  });

  describe('the dev token page', () => {
    /** GET / with a chosen Host header (fetch does not let a caller set one). */
    const page = (hostHeader: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: node.port, path: '/', headers: { host: hostHeader } },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => {
              body += c;
            });
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    const TOKEN_META = '<meta name="switchboard-token" content="dev-token-abc.def" />';

    it('carries the token for a Host of localhost, 127.0.0.1 or [::1], any port', async () => {
      for (const h of [
        'localhost',
        `localhost:${node.port}`,
        'LOCALHOST:1',
        '127.0.0.1',
        host,
        '[::1]',
        '[::1]:8080',
      ]) {
        const res = await page(h);
        expect(res.status, h).toBe(200);
        expect(res.body, h).toContain(TOKEN_META);
      }
    });

    it('leaves the token out for any other Host (a DNS-rebinding page)', async () => {
      for (const h of [
        'evil.example',
        `evil.example:${node.port}`,
        'localhost.evil.example',
        '127.0.0.1.evil.example',
        '127.0.0.2',
        '[::2]',
      ]) {
        const res = await page(h);
        expect(res.status, h).toBe(200);
        expect(res.body, h).toContain('<script type="module" src="/ui/app.js"></script>');
        expect(res.body, h).not.toContain('dev-token-abc.def');
        expect(res.body, h).not.toContain('switchboard-token"');
      }
    });
  });
});
