/**
 * The active span's W3C trace context, for the browser client's create headers and the
 * daemon's result (trace.ts). Only `@opentelemetry/api`, whose global a page's own SDK
 * registers: without one there is no active span, and nothing is sent.
 */
import { context, isSpanContextValid, type SpanContext, trace } from '@opentelemetry/api';
import type { TraceContext } from '../../protocol/api.js';
import { formatTraceparent } from '../../protocol/trace.js';

/** A span context for the wire; undefined when it is not a valid one. */
export function traceOfSpanContext(sc: SpanContext | undefined): TraceContext | undefined {
  if (!sc || !isSpanContextValid(sc)) return undefined;
  const traceparent = formatTraceparent({
    traceId: sc.traceId,
    spanId: sc.spanId,
    flags: sc.traceFlags,
  });
  const state = sc.traceState?.serialize();
  return state ? { traceparent, tracestate: state } : { traceparent };
}

/** `traceparent` (and `tracestate`) headers of the active span; none without one. */
export function activeTraceHeaders(): Record<string, string> {
  const t = traceOfSpanContext(trace.getSpanContext(context.active()));
  if (!t) return {};
  return t.tracestate === undefined
    ? { traceparent: t.traceparent }
    : { traceparent: t.traceparent, tracestate: t.tracestate };
}
