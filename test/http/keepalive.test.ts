/**
 * Refused bodies against a real node, over real keep-alive connections (DESIGN.md
 * section 7): a 413, or a 401/403 whose body was never read, is answered with
 * `Connection: close`, and the client's next request (on a fresh connection) succeeds
 * instead of meeting a reset.
 */
import { Agent, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SwitchboardNode } from '../../src/node.js';
import { clientToken, daemonToken, startTestNode } from '../helpers/node.js';

const LIMIT = 256 * 1024;
const RQ = '/v1/runtimes/laptop/requests';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The local port of the connection it came on, to tell a reused socket from a new one. */
  localPort: number;
}

/** One call through `agent`; `body` as a Buffer (with Content-Length) or chunks (chunked). */
function send(
  agent: Agent,
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer | Buffer[],
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
          localPort: req.socket?.localPort ?? 0,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (Array.isArray(body)) {
      for (const chunk of body) req.write(chunk);
      req.end();
    } else {
      req.end(body);
    }
  });
}

/** A JSON create body of about `bytes` bytes. */
function bigBody(bytes: number): Buffer {
  return Buffer.from(JSON.stringify({ kind: 'k', payload: 'x'.repeat(bytes) }));
}

describe('refused bodies on keep-alive connections', () => {
  let node: SwitchboardNode;
  let agent: Agent;
  let client: string;
  beforeAll(async () => {
    node = await startTestNode({ MAX_PAYLOAD_BYTES: String(LIMIT) });
    client = await clientToken();
  });
  afterAll(async () => {
    agent?.destroy();
    await node?.kill();
  });

  const fresh = () => {
    agent?.destroy();
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
    return agent;
  };

  /** The follow-up call on the same agent: must succeed (a fresh connection is fine). */
  async function nextCallWorks(a: Agent): Promise<void> {
    const next = await send(
      a,
      node.url,
      'POST',
      RQ,
      {
        authorization: `Bearer ${client}`,
        'content-type': 'application/json',
      },
      Buffer.from(JSON.stringify({ kind: 'after' })),
    );
    expect(next.status).toBe(201);
  }

  it('413 over MAX_PAYLOAD_BYTES with Content-Length: Connection close, next call works', async () => {
    const a = fresh();
    const warm = await send(a, node.url, 'GET', '/healthz', {});
    expect(warm.status).toBe(200);
    const refused = await send(
      a,
      node.url,
      'POST',
      RQ,
      {
        authorization: `Bearer ${client}`,
        'content-type': 'application/json',
      },
      bigBody(4 * LIMIT),
    );
    expect(refused.status).toBe(413);
    expect(refused.headers.connection).toBe('close');
    expect(JSON.parse(refused.body).error.code).toBe('payload_too_large');
    await nextCallWorks(a);
  });

  it('413 over MAX_PAYLOAD_BYTES chunked (no Content-Length): Connection close, next call works', async () => {
    const a = fresh();
    const body = bigBody(4 * LIMIT);
    const chunks = [
      body.subarray(0, LIMIT),
      body.subarray(LIMIT, 3 * LIMIT),
      body.subarray(3 * LIMIT),
    ];
    const refused = await send(
      a,
      node.url,
      'POST',
      RQ,
      {
        authorization: `Bearer ${client}`,
        'content-type': 'application/json',
      },
      chunks,
    );
    expect(refused.status).toBe(413);
    expect(refused.headers['transfer-encoding']).toBeUndefined();
    expect(refused.headers.connection).toBe('close');
    expect(JSON.parse(refused.body).error.code).toBe('payload_too_large');
    await nextCallWorks(a);
  });

  it('401 on a POST whose large body was never read: Connection close, next call works', async () => {
    const a = fresh();
    const refused = await send(
      a,
      node.url,
      'POST',
      RQ,
      {
        'content-type': 'application/json',
      },
      bigBody(LIMIT - 1024),
    );
    expect(refused.status).toBe(401);
    expect(refused.headers.connection).toBe('close');
    expect(JSON.parse(refused.body).error.code).toBe('unauthorized');
    await nextCallWorks(a);
  });

  it('checks auth before reading a body: no token and a chunked body over the limit is 401', async () => {
    const a = fresh();
    const body = bigBody(4 * LIMIT);
    const refused = await send(a, node.url, 'POST', RQ, { 'content-type': 'application/json' }, [
      body.subarray(0, LIMIT),
      body.subarray(LIMIT),
    ]);
    expect(refused.status).toBe(401);
    expect(refused.headers.connection).toBe('close');
    await nextCallWorks(a);
  });

  it('403 (wrong role) with a chunked large body: Connection close, next call works', async () => {
    const a = fresh();
    const body = bigBody(LIMIT - 1024);
    const refused = await send(
      a,
      node.url,
      'POST',
      RQ,
      {
        authorization: `Bearer ${await daemonToken()}`,
        'content-type': 'application/json',
      },
      [body.subarray(0, 1000), body.subarray(1000)],
    );
    expect(refused.status).toBe(403);
    expect(refused.headers.connection).toBe('close');
    await nextCallWorks(a);
  });

  it('keeps the connection for an accepted body', async () => {
    const a = fresh();
    const first = await send(
      a,
      node.url,
      'POST',
      RQ,
      {
        authorization: `Bearer ${client}`,
        'content-type': 'application/json',
      },
      bigBody(LIMIT / 2),
    );
    expect(first.status).toBe(201);
    expect(first.headers.connection).toBe('keep-alive');
    const second = await send(a, node.url, 'GET', '/healthz', {});
    expect(second.status).toBe(200);
    expect(second.localPort).toBe(first.localPort);
  });

  it("Node's fetch (undici): the call after a 413 succeeds", async () => {
    const headers = { authorization: `Bearer ${client}`, 'content-type': 'application/json' };
    const refused = await fetch(`${node.url}${RQ}`, {
      method: 'POST',
      headers,
      body: bigBody(4 * LIMIT),
    });
    expect(refused.status).toBe(413);
    expect(refused.headers.get('connection')).toBe('close');
    await refused.text();
    const next = await fetch(`${node.url}${RQ}`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ kind: 'after' }),
    });
    expect(next.status).toBe(201);
  });
});
