/**
 * The hub's OpenTelemetry spans, one helper per hop so each call site is one line:
 * create (the node that takes the create), claim (the node that claims and pushes, or
 * answers the heartbeat), report (the node that stores the result) and deliver (the
 * node that answers a waiter). Through `@opentelemetry/api` alone: with no SDK
 * registered in the process every span is a no-op, and no attributes are built for one
 * that does not record.
 *
 * Parents: the create span is the child of the client's `traceparent` (a root without
 * one); its context is what the record keeps (`trace`). Each claim (every attempt, a
 * redelivery too) is a child of the create and its context goes to the daemon in the
 * DaemonRequest; the daemon's handler span is a child of the claim and comes back on the
 * result, and the report span is its child. A delivery to a waiter is a child of the
 * create (the waiter waits on the create; the report's context is not stored).
 *
 * Without an SDK a span is a no-op but still carries its parent's context, so a
 * client's trace reaches the daemon through an untraced hub unchanged.
 */
import {
  type Context,
  createTraceState,
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import {
  formatTraceparent,
  parseTraceparent,
  readTrace,
  type TraceContext,
} from '../protocol/index.js';
import type { RequestRecord, RuntimeRef } from '../stores/domain.js';
import type { ClaimPath } from './metrics.js';

/** The node's id as a span attribute: nodes in one process share a provider. */
export const ATTR_NODE = 'switchboard.node';
export const ATTR_ID = 'switchboard.request.id';
export const ATTR_ATTEMPT = 'switchboard.request.attempt';
export const ATTR_EPOCH = 'switchboard.request.epoch';
export const ATTR_PATH = 'switchboard.claim.path';

const tracer = trace.getTracer('switchboard');

/** The context whose remote parent is `t` (the root context when there is none). */
export function contextOf(t: TraceContext | null | undefined): Context {
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

/** A span's context for the wire; undefined for a span of no trace (no SDK, no parent). */
export function wireTrace(span: Span | undefined): TraceContext | undefined {
  const sc = span?.spanContext();
  if (!sc || !isSpanContextValid(sc)) return undefined;
  const traceparent = formatTraceparent({
    traceId: sc.traceId,
    spanId: sc.spanId,
    flags: sc.traceFlags,
  });
  const state = sc.traceState?.serialize();
  return state ? { traceparent, tracestate: state } : { traceparent };
}

/** Ends a span, as an error when `err` is given. */
export function endSpan(span: Span | undefined, err?: unknown): void {
  if (!span) return;
  if (err !== undefined && span.isRecording()) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}

/** Runs `fn` under `span` (may be undefined), ending it either way. */
export async function inSpan<T>(span: Span | undefined, fn: () => Promise<T>): Promise<T> {
  try {
    const out = await fn();
    endSpan(span);
    return out;
  } catch (err) {
    endSpan(span, err);
    throw err;
  }
}

/**
 * A create (one request or a batch) at `nodeId`, the child of the client's headers (a
 * malformed traceparent is ignored). `fn` gets the trace context its records keep.
 */
export function traceCreate<T>(
  nodeId: string,
  rt: RuntimeRef,
  headers: { traceparent?: string; tracestate?: string },
  fn: (trace: TraceContext | undefined) => Promise<T>,
  ids: (out: T) => readonly { id: string }[],
): Promise<T> {
  const parent = contextOf(readTrace(headers.traceparent, headers.tracestate));
  const span = tracer.startSpan('switchboard.create', { kind: SpanKind.SERVER }, parent);
  if (span.isRecording()) {
    span.setAttributes({
      [ATTR_NODE]: nodeId,
      'switchboard.workspace': rt.workspace,
      'switchboard.runtime': rt.runtime,
    });
  }
  return inSpan(span, async () => {
    const out = await fn(wireTrace(span));
    if (span.isRecording()) {
      const records = ids(out);
      if (records.length === 1) span.setAttribute(ATTR_ID, (records[0] as { id: string }).id);
      else span.setAttribute('switchboard.batch.size', records.length);
    }
    return out;
  });
}

function requestAttributes(span: Span, r: RequestRecord, nodeId: string): void {
  span.setAttributes({
    [ATTR_NODE]: nodeId,
    [ATTR_ID]: r.id,
    [ATTR_ATTEMPT]: r.attempt,
    [ATTR_EPOCH]: r.epoch,
    'switchboard.runtime': r.runtime,
  });
}

/**
 * One claim of a traced request (each attempt its own span), the child of the create;
 * ended by the caller once the request is pushed (or answered by the heartbeat).
 * Undefined for a record without a trace.
 */
export function claimSpan(
  r: RequestRecord,
  path: ClaimPath,
  nodeId: string,
  connectionId: string,
): Span | undefined {
  if (r.trace === null) return undefined;
  const span = tracer.startSpan(
    'switchboard.claim',
    { kind: SpanKind.PRODUCER },
    contextOf(r.trace),
  );
  if (span.isRecording()) {
    requestAttributes(span, r, nodeId);
    span.setAttributes({ [ATTR_PATH]: path, 'switchboard.connection': connectionId });
  }
  return span;
}

/**
 * A daemon's result being stored: the child of the handler span the result carries
 * (`trace`). A result without one (an older daemon) gets its span once the record is
 * known, as the child of the create, timed from `started`.
 */
export async function traceReport<T extends { record: RequestRecord }>(
  nodeId: string,
  id: string,
  epoch: number,
  given: TraceContext | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  const t = given && readTrace(given.traceparent, given.tracestate);
  const started = Date.now();
  const span = t ? startReport(t, started) : undefined;
  let out: T;
  try {
    out = await fn();
  } catch (err) {
    if (span?.isRecording())
      span.setAttributes({ [ATTR_NODE]: nodeId, [ATTR_ID]: id, [ATTR_EPOCH]: epoch });
    endSpan(span, err);
    throw err;
  }
  const done = span ?? (out.record.trace ? startReport(out.record.trace, started) : undefined);
  if (done?.isRecording()) {
    requestAttributes(done, out.record, nodeId);
    done.setAttribute('switchboard.request.status', out.record.status);
  }
  endSpan(done);
  return out;
}

function startReport(parent: TraceContext, startTime: number): Span {
  return tracer.startSpan(
    'switchboard.report',
    { kind: SpanKind.SERVER, startTime },
    contextOf(parent),
  );
}

/** A terminal record handed to a waiter (`how`: long_poll, sse, socket), the create's child. */
export function traceDeliver(r: RequestRecord | null, nodeId: string, how: string): void {
  if (r === null || r.trace === null) return;
  const span = tracer.startSpan(
    'switchboard.deliver',
    { kind: SpanKind.SERVER },
    contextOf(r.trace),
  );
  if (span.isRecording()) {
    requestAttributes(span, r, nodeId);
    span.setAttributes({ 'switchboard.deliver.to': how, 'switchboard.request.status': r.status });
  }
  span.end();
}
