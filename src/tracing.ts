/**
 * The node's OpenTelemetry SDK: with OTEL_EXPORTER_OTLP_ENDPOINT set, a NodeTracerProvider
 * exporting over OTLP/HTTP (`<endpoint>/v1/traces`, batched), registered as the process's
 * provider (with the W3C propagator and async-local context), service.name `switchboard`
 * and service.instance.id the NODE_ID. Unset, nothing is registered and the hub's spans
 * (hub/tracing.ts) stay no-ops, and the SDK is not even loaded (it is imported only when
 * configured: some 150 ms of start-up a node without tracing does not pay). A process has
 * one global provider: a second node in the same process exports through the first one's.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import type { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Logger } from 'pino';
import type { Config } from './config.js';

/** The provider this module registered, while it is (one per process). */
let registered: NodeTracerProvider | null = null;

/** What closing the node does to tracing: flush and stop the exporter it registered. */
export type StopTracing = () => Promise<void>;

/** The OTLP/HTTP traces URL of a base endpoint (the OTel spec's rule for the generic variable). */
export function tracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/traces`;
}

/** Registers the exporter when configured; the returned function undoes it. */
export async function startTracing(config: Config, logger: Logger): Promise<StopTracing> {
  if (config.otelEndpoint === undefined) return async () => {};
  const [{ OTLPTraceExporter }, { resourceFromAttributes }, sdk, { ATTR_SERVICE_NAME }] =
    await Promise.all([
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/sdk-trace-node'),
      import('@opentelemetry/semantic-conventions'),
    ]);
  if (registered) {
    // Another node of this process registered first: its provider exports for both.
    logger.info('tracing: a node of this process exports already; its exporter is shared');
    return async () => {};
  }
  const provider = new sdk.NodeTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: 'switchboard',
      'service.instance.id': config.nodeId,
    }),
    spanProcessors: [
      new sdk.BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl(config.otelEndpoint) })),
    ],
  });
  provider.register();
  registered = provider;
  logger.info({ endpoint: tracesUrl(config.otelEndpoint) }, 'tracing: exporting spans over OTLP');
  return async () => {
    try {
      await provider.shutdown();
    } catch (err) {
      logger.warn({ err }, 'tracing: the last spans could not be exported');
    }
    registered = null;
    trace.disable();
    context.disable();
    propagation.disable();
  };
}
