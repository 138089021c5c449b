/**
 * One trace per request across nodes (issue 12): three nodes on one redis-server and a
 * daemon (the SDK) in this process, one NodeTracerProvider with an in-memory exporter
 * registered for the file. Nodes share the provider; each span names its node
 * (`switchboard.node`). A create on A with the client's traceparent, the claim and push
 * on B, the handler in the daemon, the report on B and the long-poll delivery on C are
 * one trace with the documented parents; a request whose first attempt was dropped
 * shows both claims (attempt and epoch) in the same trace.
 */
import { context, type Span, trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  NodeTracerProvider,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDaemon, type Daemon } from '../../src/client/daemon.js';
import type { SwitchboardNode } from '../../src/node.js';
import { api, clientToken, daemonToken, readyDaemon, startNodesOn } from '../helpers/node.js';
import { RedisServer } from '../helpers/redis.js';

/** Wakes whoever waits for spans each time one ends (after the exporter holds it). */
class EndedSpans implements SpanProcessor {
  #waiters: (() => void)[] = [];
  constructor(private readonly exporter: InMemorySpanExporter) {}
  onStart(): void {}
  onEnd(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
  /** The finished spans once `done` holds for them. */
  async until(done: (spans: ReadableSpan[]) => boolean, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const spans = this.exporter.getFinishedSpans();
      if (done(spans)) return spans;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`spans never matched; got ${spans.map(describeSpan)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

const describeSpan = (s: ReadableSpan) =>
  `${s.name}@${String(s.attributes['switchboard.node'] ?? '-')}`;
const spanId = (s: ReadableSpan | undefined) => s?.spanContext().spanId;
const parentOf = (s: ReadableSpan | undefined) => s?.parentSpanContext?.spanId;

describe('tracing across three nodes and a daemon', () => {
  const exporter = new InMemorySpanExporter();
  const ended = new EndedSpans(exporter);
  const provider = new NodeTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter), ended],
  });
  const clientTracer = trace.getTracer('test-client');
  let server: RedisServer;
  let a: SwitchboardNode;
  let b: SwitchboardNode;
  let c: SwitchboardNode;
  let client: string;
  const daemons: Daemon[] = [];

  beforeAll(async () => {
    provider.register();
    server = await RedisServer.start();
    [a, b, c] = (await startNodesOn(server.url, 3)) as [
      SwitchboardNode,
      SwitchboardNode,
      SwitchboardNode,
    ];
    client = await clientToken();
  });
  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.close()));
    await Promise.all([a, b, c].map((n) => n?.kill()));
    await server?.close();
    await provider.shutdown();
    trace.disable();
    context.disable();
  });

  /** A client span of the test, and its traceparent header. */
  function clientSpan(): { span: Span; traceparent: string } {
    const span = clientTracer.startSpan('client.send');
    const sc = span.spanContext();
    return { span, traceparent: `00-${sc.traceId}-${sc.spanId}-01` };
  }

  it('create (A) -> claim/push (B) -> handler (daemon) -> report (B); delivery (C)', async () => {
    let activeInHandler: string | undefined;
    const daemon = connectDaemon({
      url: b.url,
      token: await daemonToken('laptop'),
      handlers: {
        echo: (payload) => {
          activeInHandler = trace.getActiveSpan()?.spanContext().spanId;
          return payload;
        },
      },
    });
    daemons.push(daemon);

    const { span: root, traceparent } = clientSpan();
    const traceId = root.spanContext().traceId;
    const created = await api(a, 'POST', '/v1/runtimes/laptop/requests', {
      token: client,
      body: { kind: 'echo', payload: { n: 1 } },
      headers: { traceparent, tracestate: 'vendor=x' },
    });
    root.end();
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const poll = await api(c, 'GET', `/v1/runtimes/laptop/requests/${id}?wait_ms=20000`, {
      token: client,
    });
    expect(poll.body).toMatchObject({ id, status: 'completed', result: { n: 1 } });

    const ofRequest = (s: ReadableSpan) =>
      s.attributes['switchboard.request.id'] === id && s.spanContext().traceId === traceId;
    const spans = await ended.until((all) => {
      const names = new Set(all.filter(ofRequest).map((s) => s.name));
      return ['create', 'claim', 'report', 'deliver'].every((n) => names.has(`switchboard.${n}`));
    });
    const mine = spans.filter(ofRequest);
    const one = (name: string) => {
      const found = mine.filter((s) => s.name === name);
      expect(found.map(describeSpan)).toHaveLength(1);
      return found[0] as ReadableSpan;
    };
    const create = one('switchboard.create');
    const claim = one('switchboard.claim');
    const handler = one('switchboard.handle echo');
    const report = one('switchboard.report');
    const deliver = one('switchboard.deliver');

    // One trace, the client's, across the three nodes and the daemon.
    expect(new Set(mine.map((s) => s.spanContext().traceId))).toEqual(new Set([traceId]));
    expect(create.attributes['switchboard.node']).toBe('node-a');
    expect(claim.attributes).toMatchObject({
      'switchboard.node': 'node-b',
      'switchboard.request.attempt': 1,
      'switchboard.request.epoch': 1,
    });
    expect(['push', 'connect', 'sweep']).toContain(claim.attributes['switchboard.claim.path']);
    expect(handler.attributes).toMatchObject({
      'switchboard.request.kind': 'echo',
      'switchboard.request.attempt': 1,
      'switchboard.request.epoch': 1,
    });
    expect(report.attributes).toMatchObject({
      'switchboard.node': 'node-b',
      'switchboard.request.status': 'completed',
    });
    expect(deliver.attributes).toMatchObject({
      'switchboard.node': 'node-c',
      'switchboard.deliver.to': 'long_poll',
    });

    // The parents.
    expect(parentOf(create)).toBe(root.spanContext().spanId);
    expect(parentOf(claim)).toBe(spanId(create));
    expect(parentOf(handler)).toBe(spanId(claim));
    expect(parentOf(report)).toBe(spanId(handler));
    expect(parentOf(deliver)).toBe(spanId(create));
    // The handler ran with its span active.
    expect(activeInHandler).toBe(spanId(handler));
    // The record keeps the create's context (and the client's tracestate).
    expect(created.body.trace).toEqual({
      traceparent: `00-${traceId}-${spanId(create)}-01`,
      tracestate: 'vendor=x',
    });
    expect(poll.body.trace).toEqual(created.body.trace);
  });

  it('a redelivered request: both claims in the same trace, with attempt and epoch', async () => {
    const token = await daemonToken('desk');
    // The first daemon takes the first attempt and goes away without a result.
    const dropper = await readyDaemon(b, token, 1);
    const { span: root, traceparent } = clientSpan();
    const traceId = root.spanContext().traceId;
    const created = await api(a, 'POST', '/v1/runtimes/desk/requests', {
      token: client,
      body: { kind: 'echo', payload: 2, max_attempts: 2, lease_ms: 300 },
      headers: { traceparent },
    });
    root.end();
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    const first = await dropper.next('request');
    expect(first.request).toMatchObject({ id, epoch: 1, attempt: 1 });
    expect(first.request.trace.traceparent).toMatch(new RegExp(`^00-${traceId}-`));
    await dropper.close();

    // The lease lapses, the request is requeued and the SDK daemon on C takes attempt 2.
    const daemon = connectDaemon({
      url: c.url,
      token,
      handlers: { echo: (payload) => payload },
    });
    daemons.push(daemon);
    const poll = await api(a, 'GET', `/v1/runtimes/desk/requests/${id}?wait_ms=20000`, {
      token: client,
    });
    // epoch: 1 at the first claim, 2 at the requeue, 3 at the second claim.
    expect(poll.body).toMatchObject({ id, status: 'completed', attempt: 2, epoch: 3 });

    const ofRequest = (s: ReadableSpan) =>
      s.attributes['switchboard.request.id'] === id && s.spanContext().traceId === traceId;
    const spans = await ended.until((all) => {
      const mine = all.filter(ofRequest);
      return (
        mine.filter((s) => s.name === 'switchboard.claim').length === 2 &&
        mine.some((s) => s.name === 'switchboard.report') &&
        mine.some((s) => s.name === 'switchboard.deliver')
      );
    });
    const mine = spans.filter(ofRequest);
    const create = mine.find((s) => s.name === 'switchboard.create');
    const claims = mine
      .filter((s) => s.name === 'switchboard.claim')
      .sort(
        (x, y) =>
          Number(x.attributes['switchboard.request.epoch']) -
          Number(y.attributes['switchboard.request.epoch']),
      );
    expect(claims.map((s) => s.attributes)).toEqual([
      expect.objectContaining({
        'switchboard.node': 'node-b',
        'switchboard.request.attempt': 1,
        'switchboard.request.epoch': 1,
      }),
      expect.objectContaining({
        'switchboard.node': 'node-c',
        'switchboard.request.attempt': 2,
        'switchboard.request.epoch': 3,
      }),
    ]);
    for (const claim of claims) expect(parentOf(claim)).toBe(spanId(create));
    // Only the second attempt ran a handler here; the report is its child.
    const handlers = mine.filter((s) => s.name === 'switchboard.handle echo');
    expect(handlers.map((s) => parentOf(s))).toEqual([spanId(claims[1])]);
    const report = mine.find((s) => s.name === 'switchboard.report');
    expect(parentOf(report)).toBe(spanId(handlers[0]));
    expect(report?.attributes['switchboard.node']).toBe('node-c');
  });
  it('the HTTP path: heartbeat claim (B) -> the result posted with its trace (C)', async () => {
    const token = await daemonToken('poller');
    const { span: root, traceparent } = clientSpan();
    const traceId = root.spanContext().traceId;
    const created = await api(a, 'POST', '/v1/runtimes/poller/requests', {
      token: client,
      body: { kind: 'echo' },
      headers: { traceparent },
    });
    root.end();
    const id = created.body.id as string;
    const beat = await api(b, 'POST', '/v1/daemon/heartbeat', { token, body: { max: 1 } });
    const [pushed] = beat.body.requests as {
      id: string;
      epoch: number;
      trace: { traceparent: string };
    }[];
    expect(pushed?.id).toBe(id);
    // The daemon's handler span, as a daemon without the SDK would make one up.
    const handlerSpanId = '1234567890abcdef';
    const posted = await api(c, 'POST', `/v1/daemon/requests/${id}/result`, {
      token,
      body: {
        epoch: pushed?.epoch,
        status: 'completed',
        result: 'ok',
        trace: { traceparent: `00-${traceId}-${handlerSpanId}-01` },
      },
    });
    expect(posted.status).toBe(200);

    const ofRequest = (s: ReadableSpan) =>
      s.attributes['switchboard.request.id'] === id && s.spanContext().traceId === traceId;
    const spans = await ended.until((all) => {
      const names = all.filter(ofRequest).map((s) => s.name);
      return names.includes('switchboard.claim') && names.includes('switchboard.report');
    });
    const mine = spans.filter(ofRequest);
    const create = mine.find((s) => s.name === 'switchboard.create');
    const claim = mine.find((s) => s.name === 'switchboard.claim');
    const report = mine.find((s) => s.name === 'switchboard.report');
    expect(claim?.attributes).toMatchObject({
      'switchboard.node': 'node-b',
      'switchboard.claim.path': 'heartbeat',
      'switchboard.request.attempt': 1,
    });
    expect(parentOf(claim)).toBe(spanId(create));
    expect(pushed?.trace.traceparent).toBe(`00-${traceId}-${spanId(claim)}-01`);
    expect(report?.attributes['switchboard.node']).toBe('node-c');
    expect(parentOf(report)).toBe(handlerSpanId);
  });
});
