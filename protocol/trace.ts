/**
 * W3C trace context (https://www.w3.org/TR/trace-context/) as the wire carries it: a
 * request's `trace` ({traceparent, tracestate?}) on the API record, in DaemonRequest and
 * on result reports (DESIGN.md section 4). Plain functions, no schema library: the
 * browser bundle formats a traceparent with them. An invalid header is ignored, never an
 * error (the W3C rule): `readTrace` answers undefined and the caller carries on untraced.
 */

import type { TraceContext } from './api.js';

/** The parts of a traceparent. */
export interface TraceParent {
  traceId: string;
  spanId: string;
  /** The trace-flags byte (bit 0: sampled). */
  flags: number;
}

/** Version 00 is exactly this; a later version may append `-...` fields, ignored here. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
/** W3C: at most 512 characters worth keeping; printable ASCII without list breakage. */
const MAX_TRACESTATE = 512;
const TRACESTATE = /^[\x20-\x7e]*$/;

/** Parses a traceparent header; undefined when it is not a valid one. */
export function parseTraceparent(header: string | undefined): TraceParent | undefined {
  if (header === undefined) return undefined;
  const m = TRACEPARENT.exec(header.trim());
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as string[];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return {
    traceId: traceId as string,
    spanId: spanId as string,
    flags: parseInt(flags as string, 16),
  };
}

/** Formats a version-00 traceparent. */
export function formatTraceparent(p: TraceParent): string {
  return `00-${p.traceId}-${p.spanId}-${(p.flags & 0xff).toString(16).padStart(2, '0')}`;
}

/**
 * The trace context of incoming headers (or a wire `trace` object's fields): undefined
 * without a valid traceparent; a tracestate that is empty, too long or not printable
 * ASCII is dropped (the traceparent is kept, as W3C says).
 */
export function readTrace(
  traceparent: string | undefined,
  tracestate: string | undefined,
): TraceContext | undefined {
  const parent = parseTraceparent(traceparent);
  if (!parent) return undefined;
  const out: TraceContext = { traceparent: formatTraceparent(parent) };
  const state = tracestate?.trim();
  if (state && state.length <= MAX_TRACESTATE && TRACESTATE.test(state)) out.tracestate = state;
  return out;
}
