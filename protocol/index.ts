/**
 * The protocol layer: the lowest layer of Switchboard, importing nothing of ours. The
 * API shapes, every websocket frame in both directions, the error and close codes, and
 * the backoff formula, each written once; stores/, hub/, src/ and both SDKs import them
 * from here.
 */
export * from './api.js';
export * from './backoff.js';
export * from './codes.js';
export * from './frames.js';
export { isJsonValue, MAX_JSON_DEPTH } from './json.js';
export * from './stats.js';
export { isTerminal, RETRYABLE, STATUSES, TERMINAL } from './status.js';
export { formatTraceparent, parseTraceparent, readTrace, type TraceParent } from './trace.js';
