/**
 * The browser client's create carries the active span's W3C context (a page that traces
 * with its own OpenTelemetry SDK), and nothing without one. Run in Node against a real
 * node, with a NodeTracerProvider registered for the file (it also makes the node
 * trace, so the create span's parent shows what the client sent).
 */
import { context, trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  NodeTracerProvider,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Client, createClient } from '../../src/client/browser.js';
import type { SwitchboardNode } from '../../src/node.js';
import { clientToken, startTestNode } from '../helpers/node.js';

describe('browser client trace context', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let node: SwitchboardNode;
  let client: Client;

  beforeAll(async () => {
    provider.register();
    node = await startTestNode();
    client = createClient({ url: node.url, token: await clientToken() });
  });
  afterAll(async () => {
    client?.close();
    await node?.kill();
    await provider.shutdown();
    trace.disable();
    context.disable();
  });

  /** The node's create span of request `id` (ended before the 201 went out). */
  const createSpan = (id: string) =>
    exporter
      .getFinishedSpans()
      .find(
        (s) => s.name === 'switchboard.create' && s.attributes['switchboard.request.id'] === id,
      );

  it('sends the active span as traceparent: the create span is its child', async () => {
    const span = trace.getTracer('page').startSpan('button.click');
    const sent = await context.with(trace.setSpan(context.active(), span), () =>
      client.send('rt', 'k', 1),
    );
    span.end();
    const create = createSpan(sent.id);
    expect(create?.spanContext().traceId).toBe(span.spanContext().traceId);
    expect(create?.parentSpanContext?.spanId).toBe(span.spanContext().spanId);
    expect(sent.trace?.traceparent).toBe(
      `00-${span.spanContext().traceId}-${create?.spanContext().spanId}-01`,
    );
  });

  it('sends none without an active span: the create starts its own trace', async () => {
    const sent = await client.send('rt', 'k', 2);
    const create = createSpan(sent.id);
    expect(create).toBeDefined();
    expect(create?.parentSpanContext).toBeUndefined();
  });
});
