/**
 * The paths of the OpenAPI document: one entry per route of DESIGN.md section 4, with
 * request bodies and responses referring to the components that openapi.ts generates
 * from the zod schemas.
 */
import { z } from 'zod';
import { EventsQuery, GetQuery, ListQuery, OutputQuery } from './schemas.js';

type Json = Record<string, unknown>;
export const REF = '#/components/schemas/';

function queryParams(schema: z.ZodObject): Json[] {
  const json = z.toJSONSchema(schema, { io: 'input' }) as Json;
  const properties = (json.properties ?? {}) as Record<string, Json>;
  const required = new Set((json.required as string[] | undefined) ?? []);
  return Object.entries(properties).map(([name, s]) => ({
    name,
    in: 'query',
    required: required.has(name),
    schema: s,
  }));
}

const ref = (id: string): Json => ({ $ref: `${REF}${id}` });
const json = (id: string): Json => ({ content: { 'application/json': { schema: ref(id) } } });
const path = (name: string, description: string): Json => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,128}$' },
});
const RUNTIME = path('runtime', 'the runtime id, inside the caller’s workspace');
const ID = path('id', 'the request id');
const IDEMPOTENCY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'same key + same body: 200 with the same request; other body: 409',
  schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
};
/** W3C trace context of a create (docs/PROTOCOL.md section 3a): a malformed one is ignored. */
const TRACE = [
  {
    name: 'traceparent',
    in: 'header',
    required: false,
    description:
      'W3C traceparent; the record keeps the create’s trace context (ignored if malformed)',
    schema: { type: 'string' },
  },
  {
    name: 'tracestate',
    in: 'header',
    required: false,
    description: 'W3C tracestate, kept with a valid traceparent',
    schema: { type: 'string' },
  },
];
const ERRORS: Record<string, string> = {
  '400': 'invalid_request',
  '401': 'unauthorized',
  '403': 'forbidden',
  '404': 'not_found',
  '409': 'lease_lost, already_terminal, idempotency_conflict, not_retryable or output_limit',
  '413': 'payload_too_large',
  '429':
    'limit_exceeded: MAX_PENDING_PER_RUNTIME or CREATE_RATE_PER_WORKSPACE; wait for Retry-After (seconds), nothing was created',
  '503': 'store_unavailable or draining',
};

interface Op {
  summary: string;
  security?: 'client' | 'daemon';
  params?: Json[];
  body?: string;
  optionalBody?: boolean;
  ok: Record<string, [string, string | null]>;
  errors?: string[];
}

function operation(op: Op): Json {
  const responses: Json = {};
  for (const [status, [description, schema]] of Object.entries(op.ok)) {
    responses[status] = schema === null ? { description } : { description, ...json(schema) };
  }
  const errors = op.security ? ['401', '403', '503', ...(op.errors ?? [])] : (op.errors ?? []);
  for (const status of errors)
    responses[status] = { description: ERRORS[status], ...json('Error') };
  return {
    summary: op.summary,
    ...(op.security ? { security: [{ bearer: [] }], tags: [op.security] } : { tags: ['ops'] }),
    ...(op.params ? { parameters: op.params } : {}),
    ...(op.body ? { requestBody: { required: !op.optionalBody, ...json(op.body) } } : {}),
    responses,
  };
}

export function openApiPaths(): Record<string, Record<string, Json>> {
  const rq = '/v1/runtimes/{runtime}/requests';
  const client = 'client' as const;
  const daemon = 'daemon' as const;
  return {
    '/v1/runtimes': {
      get: operation({
        summary: 'The workspace’s runtimes',
        security: client,
        ok: { '200': ['runtimes', 'RuntimeList'] },
      }),
    },
    '/v1/runtimes/{runtime}': {
      get: operation({
        summary: 'One runtime',
        security: client,
        params: [RUNTIME],
        ok: { '200': ['the runtime', 'RuntimeInfo'] },
        errors: ['400', '404'],
      }),
    },
    [rq]: {
      post: operation({
        summary: 'Create a request',
        security: client,
        params: [RUNTIME, IDEMPOTENCY, ...TRACE],
        body: 'CreateRequestBody',
        ok: { '201': ['created', 'Request'], '200': ['idempotent replay', 'Request'] },
        errors: ['400', '409', '413', '429'],
      }),
      get: operation({
        summary: 'List requests, newest first; with ordering_key, that key’s line, head first',
        security: client,
        params: [RUNTIME, ...queryParams(ListQuery)],
        ok: { '200': ['a page', 'RequestList'] },
        errors: ['400'],
      }),
    },
    [`${rq}/batch`]: {
      post: operation({
        summary: 'Create 1..500 requests, all or none',
        security: client,
        params: [RUNTIME, ...TRACE],
        body: 'CreateBatchBody',
        ok: { '201': ['created', 'BatchResponse'] },
        errors: ['400', '413', '429'],
      }),
    },
    [`${rq}/{id}`]: {
      get: operation({
        summary: 'One request; with wait_ms, long-poll until terminal',
        security: client,
        params: [RUNTIME, ID, ...queryParams(GetQuery)],
        ok: { '200': ['the request', 'Request'] },
        errors: ['400', '404'],
      }),
    },
    [`${rq}/{id}/output`]: {
      get: operation({
        summary: 'A page of the request’s stored output after an offset',
        security: client,
        params: [RUNTIME, ID, ...queryParams(OutputQuery)],
        ok: { '200': ['chunks after `after`', 'OutputPage'] },
        errors: ['400', '404'],
      }),
    },
    [`${rq}/{id}/events`]: {
      get: operation({
        summary:
          'SSE: `output` events (id: offset) and `state` events until the terminal state; resume with Last-Event-ID',
        security: client,
        params: [
          RUNTIME,
          ID,
          ...queryParams(EventsQuery),
          {
            name: 'Last-Event-ID',
            in: 'header',
            required: false,
            description: 'resume after this output offset (wins over `after`)',
            schema: { type: 'string', pattern: '^\\d{1,15}$' },
          },
        ],
        ok: { '200': ['text/event-stream', null] },
        errors: ['400', '404'],
      }),
    },
    [`${rq}/{id}/cancel`]: {
      post: operation({
        summary: 'Cancel a pending or running request',
        security: client,
        params: [RUNTIME, ID],
        body: 'CancelBody',
        optionalBody: true,
        ok: { '200': ['cancelled', 'Request'] },
        errors: ['400', '404', '409'],
      }),
    },
    [`${rq}/{id}/retry`]: {
      post: operation({
        summary: 'Retry a failed, timed-out or cancelled request',
        security: client,
        params: [RUNTIME, ID],
        ok: { '201': ['the new request', 'Request'] },
        errors: ['400', '404', '409', '429'],
      }),
    },
    '/v1/stats': {
      get: operation({
        summary: 'The workspace’s per-minute figures for the last 15 minutes, from every node',
        security: client,
        ok: { '200': ['15 minutes, oldest first', 'WorkspaceStats'] },
      }),
    },
    '/v1/daemon/heartbeat': {
      post: operation({
        summary: 'Poll: renew leases and claim work',
        security: daemon,
        body: 'HeartbeatBody',
        optionalBody: true,
        ok: { '200': ['claimed work and lease states', 'HeartbeatResponse'] },
        errors: ['400', '413'],
      }),
    },
    '/v1/daemon/requests/{id}/result': {
      post: operation({
        summary: 'Report a result, fenced by epoch',
        security: daemon,
        params: [ID],
        body: 'ResultBody',
        ok: { '200': ['accepted', 'ResultResponse'] },
        errors: ['400', '404', '409', '413'],
      }),
    },
    '/v1/daemon/requests/{id}/output': {
      post: operation({
        summary: 'Append output chunks, fenced by epoch, deduplicated by seq',
        security: daemon,
        params: [ID],
        body: 'OutputBody',
        ok: { '200': ['stored up to acked_seq', 'OutputAck'] },
        errors: ['400', '404', '409', '413'],
      }),
    },
    '/v1/daemon/requests/{id}/renew': {
      post: operation({
        summary: 'Extend a lease, fenced by epoch',
        security: daemon,
        params: [ID],
        body: 'RenewBody',
        ok: { '200': ['renewed', 'RenewResponse'] },
        errors: ['400', '404', '409'],
      }),
    },
    '/v1/daemon/ws': {
      get: operation({
        summary: 'Daemon websocket (frames: DESIGN.md section 4)',
        security: daemon,
        ok: { '101': ['switching protocols', null] },
      }),
    },
    '/v1/ws': {
      get: operation({
        summary: 'Client websocket (frames: DESIGN.md section 4)',
        security: client,
        ok: { '101': ['switching protocols', null] },
      }),
    },
    '/healthz': { get: operation({ summary: 'Alive', ok: { '200': ['alive', null] } }) },
    '/readyz': {
      get: operation({
        summary: 'Ready: store and subscriber up, not draining',
        ok: { '200': ['ready', null], '503': ['not ready', null] },
      }),
    },
    '/metrics': {
      get: operation({ summary: 'Prometheus metrics', ok: { '200': ['metrics', null] } }),
    },
    '/openapi.json': {
      get: operation({ summary: 'This document', ok: { '200': ['OpenAPI 3.1', null] } }),
    },
    '/': { get: operation({ summary: 'The dashboard', ok: { '200': ['HTML', null] } }) },
  };
}
