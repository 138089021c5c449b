/**
 * The SDKs' OpenTelemetry glue, through `@opentelemetry/api` alone (a no-op unless the
 * process registers an SDK): the daemon runs each handler in a child span of the
 * request's trace (DaemonRequest.trace, the hub's claim span) and reports that span's
 * context back on the result; the browser client sends the active span's traceparent
 * on a create. The hub has its own copy of the two conversions (hub/tracing.ts): the
 * SDKs depend on protocol/ alone.
 */
import {
  type Context,
  context,
  createTraceState,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { DaemonRequest, TraceContext } from '../../protocol/api.js';
import { parseTraceparent } from '../../protocol/trace.js';
import { traceOfSpanContext } from './browser-trace.js';

const tracer = trace.getTracer('switchboard-daemon');

/** The context whose remote parent is `t` (the root context when there is none). */
export function contextOf(t: TraceContext | undefined): Context {
  const p = t ? parseTraceparent(t.traceparent) : undefined;
  if (!t || !p) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: p.traceId,
    spanId: p.spanId,
    traceFlags: p.flags,
    isRemote: true,
    traceState: t.tracestate === undefined ? undefined : createTraceState(t.tracestate),
  });
}

/** A span's context for the wire; undefined for a span of no trace. */
export function wireTrace(span: Span | undefined): TraceContext | undefined {
  return traceOfSpanContext(span?.spanContext());
}

/** A handler's span: the child of the request's trace (a root one without it). */
export function handlerSpan(request: DaemonRequest): Span {
  const span = tracer.startSpan(
    `switchboard.handle ${request.kind}`,
    { kind: SpanKind.CONSUMER },
    contextOf(request.trace),
  );
  if (span.isRecording()) {
    span.setAttributes({
      'switchboard.request.id': request.id,
      'switchboard.request.kind': request.kind,
      'switchboard.request.attempt': request.attempt,
      'switchboard.request.epoch': request.epoch,
    });
  }
  return span;
}

/** Runs `fn` with `span` active (the handler's own spans become its children). */
export function runInSpan<T>(span: Span, fn: () => T): T {
  return context.with(trace.setSpan(ROOT_CONTEXT, span), fn);
}

/** Ends a handler span with the outcome's status. */
export function endHandlerSpan(span: Span, outcome: { status: string } | null): void {
  if (span.isRecording()) {
    if (outcome === null) span.setAttribute('switchboard.lost', true);
    else {
      span.setAttribute('switchboard.request.status', outcome.status);
      if (outcome.status === 'failed') span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }
  span.end();
}
