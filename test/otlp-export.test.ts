/**
 * OTEL_EXPORTER_OTLP_ENDPOINT: a node registers the OTLP/HTTP exporter and its spans
 * reach `<endpoint>/v1/traces` (here a collector stand-in on loopback), service.name
 * `switchboard` and service.instance.id the NODE_ID, flushed when the node closes. A bad
 * URL is a startup error naming the variable.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config.js';
import { api, clientToken, startTestNode, testConfig } from './helpers/node.js';

describe('OTLP export', () => {
  const posts: { path: string; type: string; body: string }[] = [];
  let wake = () => {};
  const collector = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({
        path: req.url ?? '',
        type: String(req.headers['content-type']),
        body: Buffer.concat(chunks).toString('latin1'),
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      wake();
    });
  });
  let endpoint: string;

  beforeAll(async () => {
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/otlp/`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => collector.close(() => resolve()));
  });

  it('exports the spans of a create to <endpoint>/v1/traces, flushed on close', async () => {
    const node = await startTestNode({
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      NODE_ID: 'node-otel',
    });
    const created = await api(node, 'POST', '/v1/runtimes/rt/requests', {
      token: await clientToken(),
      body: { kind: 'k' },
      headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    });
    expect(created.status).toBe(201);
    const flushed = new Promise<void>((resolve) => {
      wake = resolve;
    });
    await node.close();
    if (!posts.some((p) => p.body.includes('switchboard.create'))) await flushed;
    const post = posts.find((p) => p.body.includes('switchboard.create'));
    expect(post?.path).toBe('/otlp/v1/traces');
    expect(post?.body).toContain('switchboard');
    expect(post?.body).toContain('node-otel');
    expect(post?.body).toContain(created.body.id);
  });

  it('refuses a URL that is not http(s)', () => {
    expect(() => testConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(
      ConfigError,
    );
    expect(testConfig({}).otelEndpoint).toBeUndefined();
  });
});
