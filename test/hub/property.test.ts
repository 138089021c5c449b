/**
 * Property tests against a real node over real sockets (fast-check): whatever bytes an
 * authenticated caller sends to the HTTP routes or over either websocket, the node never
 * answers 5xx, never crashes, and every answer is a protocol-conformant body or frame
 * (DESIGN.md section 4). Runs on the embedded store and on a private redis-server.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ClientInbound,
  DaemonInbound,
  DaemonRequest,
  Request,
  RuntimeInfo,
} from '../../protocol/index.js';
import { HeartbeatResponse, RenewResponse } from '../../src/http/schemas.js';
import type { SwitchboardNode } from '../../src/node.js';
import {
  api,
  clientToken,
  daemonToken,
  FrameSocket,
  readyDaemon,
  STORE_BACKENDS,
  startTestNode,
  withUncaught,
} from '../helpers/node.js';

const NUM_RUNS = 100;
const FRAME_TIMEOUT_MS = 2_000;
/** Deep enough to overflow a recursive validator, far under MAX_PAYLOAD_BYTES (20 KB). */
const DEEP = 10_000;

/** DESIGN.md section 4: every error code a 4xx may carry, and its status. */
const ERROR_STATUS: Record<string, number> = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  lease_lost: 409,
  already_terminal: 409,
  idempotency_conflict: 409,
  not_retryable: 409,
  payload_too_large: 413,
};

const ErrorBody = z.strictObject({
  error: z.strictObject({
    code: z.string(),
    message: z.string().min(1),
    details: z
      .array(
        z.strictObject({
          path: z.array(z.union([z.string(), z.number()])),
          message: z.string(),
        }),
      )
      .optional(),
  }),
});

// ---- what the server may send -------------------------------------------------------

const IdEpoch = { id: z.string().min(1), epoch: z.number().int().min(0) };
const ErrorFrame = z.strictObject({
  type: z.literal('error'),
  code: z.string().min(1),
  message: z.string().min(1),
});
const DaemonOutbound = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('hello'),
    node_id: z.string().min(1),
    connection_id: z.string().min(1),
    heartbeat_interval_ms: z.number().int().positive(),
    lease_ms: z.number().int().positive(),
    max_payload_bytes: z.number().int().positive(),
  }),
  z.strictObject({ type: z.literal('request'), request: DaemonRequest.strict() }),
  z.strictObject({ type: z.literal('renewed'), ...IdEpoch, lease_expires_at: z.iso.datetime() }),
  z.strictObject({ type: z.literal('lease_lost'), ...IdEpoch }),
  z.strictObject({ type: z.literal('ack'), ...IdEpoch }),
  z.strictObject({
    type: z.literal('nack'),
    ...IdEpoch,
    code: z.enum(['lease_lost', 'store_unavailable', 'invalid_message']),
    retry: z.boolean(),
  }),
  z.strictObject({ type: z.literal('cancel'), ...IdEpoch }),
  z.strictObject({ type: z.literal('drain'), reason: z.string() }),
  ErrorFrame.extend({ code: z.enum(['invalid_message', 'store_unavailable']) }),
]);
const ClientOutbound = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('snapshot'),
    runtime: z.string().min(1),
    requests: z.array(Request.strict()),
    runtime_info: RuntimeInfo.strict(),
  }),
  z.strictObject({ type: z.literal('request'), request: Request.strict() }),
  z.strictObject({ type: z.literal('runtime'), runtime_info: RuntimeInfo.strict() }),
  ErrorFrame.extend({ code: z.enum(['invalid_message', 'store_unavailable']) }),
]);

/** A 2xx body per route. */
const SUCCESS: Record<Route, z.ZodType> = {
  create: Request.strict(),
  batch: z.strictObject({ requests: z.array(Request.strict()).min(1) }),
  heartbeat: HeartbeatResponse.strict(),
  result: z.strictObject({ request: Request.strict() }),
  renew: RenewResponse.strict(),
};

// ---- arbitraries --------------------------------------------------------------------

type Route = 'create' | 'batch' | 'heartbeat' | 'result' | 'renew';

const FIELD_NAMES = [
  'kind',
  'payload',
  'priority',
  'max_attempts',
  'pending_timeout_ms',
  'lease_ms',
  'requests',
  'max',
  'leases',
  'id',
  'epoch',
  'status',
  'result',
  'error',
  'code',
  'message',
  'type',
  'capacity',
  'runtime',
  '__proto__',
  'constructor',
  'toString',
];
const scalar = fc.oneof(
  fc.integer({ min: -3, max: 600 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, 1e300, 2 ** 53 + 1, 0.5),
  fc.string({ maxLength: 20 }),
  fc.boolean(),
  fc.constant(null),
);
const anyJson = fc.oneof(scalar, fc.jsonValue({ maxDepth: 3 }));
/** JSON text of an object whose keys are written as given (duplicates, `__proto__`). */
const objectText = (entries: [string, unknown][]) =>
  `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`;
const randomObjectText = fc
  .array(
    fc.tuple(fc.oneof(fc.constantFrom(...FIELD_NAMES), fc.string({ maxLength: 12 })), anyJson),
    {
      maxLength: 6,
    },
  )
  .map(objectText);
/** Text nested `depth` levels deep: arrays, or objects, inside a valid-looking field. */
const nested = (depth: number, open = '[', close = ']') =>
  `${open.repeat(depth)}${close.repeat(depth)}`;

const kind = fc.oneof(
  fc.constantFrom('echo', 'skills.list', 'a:b', ''),
  fc.string({ maxLength: 10 }),
);
const epoch = fc.oneof(fc.integer({ min: 0, max: 3 }), scalar);
const createish = fc.record(
  {
    kind,
    payload: fc.jsonValue({ maxDepth: 4 }),
    priority: fc.oneof(fc.integer({ min: -1, max: 10 }), scalar),
    max_attempts: fc.oneof(fc.integer({ min: 0, max: 21 }), scalar),
    pending_timeout_ms: fc.oneof(fc.integer({ min: 0, max: 8 * 24 * 3600_000 }), scalar),
    lease_ms: fc.oneof(fc.integer({ min: 0, max: 3_700_000 }), scalar),
  },
  { requiredKeys: [] },
);

/** Ids claimed by the HTTP daemon before the run (valid targets for result/renew). */
const claimedIds: string[] = [];
const requestId = fc.oneof(
  fc.nat().map((i) => claimedIds[i % Math.max(1, claimedIds.length)] ?? 'none'),
  fc.constantFrom(
    '01ARZ3NDEKTSV4RRFFQ69G5FAV',
    'x',
    '.',
    '..',
    'a%2Fb',
    'bad%20id',
    'x'.repeat(129),
  ),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
);

const validish: Record<Route, fc.Arbitrary<unknown>> = {
  create: createish,
  batch: fc.oneof(
    fc.record({ requests: fc.array(createish, { maxLength: 4 }) }),
    fc.integer({ min: 499, max: 501 }).map((n) => ({ requests: Array(n).fill({ kind: 'bulk' }) })),
  ),
  heartbeat: fc.record(
    {
      max: fc.oneof(fc.integer({ min: -1, max: 101 }), scalar),
      leases: fc.oneof(
        fc.array(fc.record({ id: requestId.map(decodeURIComponentSafe), epoch }), { maxLength: 4 }),
        anyJson,
      ),
    },
    { requiredKeys: [] },
  ),
  result: fc.record(
    {
      epoch,
      status: fc.oneof(fc.constantFrom('completed', 'failed', 'running', 'pending'), scalar),
      result: fc.jsonValue({ maxDepth: 4 }),
      error: fc.oneof(fc.record({ code: fc.string(), message: fc.string() }), anyJson),
    },
    { requiredKeys: ['epoch', 'status'] },
  ),
  renew: fc.record({ epoch }, { requiredKeys: [] }),
};

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

const bodyText = (route: Route): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: validish[route].map((v) => JSON.stringify(v)) },
    { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
    { weight: 2, arbitrary: fc.anything().map((v) => String(JSON.stringify(v))) },
    { weight: 2, arbitrary: randomObjectText },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom('payload', 'result', 'requests', 'leases', 'epoch'),
          fc.integer({ min: 1, max: 20_000 }),
          fc.boolean(),
        )
        .map(([field, depth, arrays]) =>
          objectText([
            ['kind', 'deep'],
            ['epoch', 1],
            ['status', 'completed'],
          ]).replace(
            /}$/,
            `,${JSON.stringify(field)}:${arrays ? nested(depth) : deepObject(depth)}}`,
          ),
        ),
    },
  );

function deepObject(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/**
 * Always tried first: a body nested DEEP levels in the one field each route validates
 * recursively (any JSON). 20 KB, far under MAX_PAYLOAD_BYTES.
 */
function deepExamples(route: Route): [string, string, Record<string, string>][] {
  const deep = nested(DEEP);
  switch (route) {
    case 'create':
      return [['/v1/runtimes/prop/requests', `{"kind":"deep","payload":${deep}}`, {}]];
    case 'batch':
      return [
        [
          '/v1/runtimes/prop/requests/batch',
          `{"requests":[{"kind":"deep","payload":${deep}}]}`,
          {},
        ],
      ];
    case 'result':
      return [
        [
          `/v1/daemon/requests/${claimedIds[0]}/result`,
          `{"epoch":1,"status":"completed","result":${deep}}`,
          {},
        ],
      ];
    default:
      return [];
  }
}

const pathFor = (route: Route): fc.Arbitrary<string> => {
  const runtime = fc.oneof(
    { weight: 4, arbitrary: fc.constant('prop') },
    { weight: 1, arbitrary: fc.string({ maxLength: 10 }).map(encodeURIComponent) },
    { weight: 1, arbitrary: fc.constantFrom('bad%20id', '.', '..', 'x'.repeat(129), '%E2%82%AC') },
  );
  switch (route) {
    case 'create':
      return runtime.map((rt) => `/v1/runtimes/${rt}/requests`);
    case 'batch':
      return runtime.map((rt) => `/v1/runtimes/${rt}/requests/batch`);
    case 'heartbeat':
      return fc.constant('/v1/daemon/heartbeat');
    case 'result':
      return requestId.map((id) => `/v1/daemon/requests/${id}/result`);
    case 'renew':
      return requestId.map((id) => `/v1/daemon/requests/${id}/renew`);
  }
};

const headerArb = fc.record(
  {
    'content-type': fc.constantFrom(
      'application/json',
      'text/plain',
      'application/x-www-form-urlencoded',
    ),
    'idempotency-key': fc.oneof(
      fc.constantFrom('k1', 'k2', ''),
      fc.stringMatching(/^[\x21-\x7e]{1,300}$/),
    ),
  },
  { requiredKeys: [] },
);

// ---- frames -------------------------------------------------------------------------

const FRAME_TYPES = [
  'ready',
  'renew',
  'result',
  'hello',
  'request',
  'renewed',
  'lease_lost',
  'ack',
  'nack',
  'cancel',
  'drain',
  'error',
  'subscribe',
  'unsubscribe',
  'snapshot',
  'runtime',
  '',
];
const runtimeName = fc.oneof(
  fc.constantFrom('prop', 'prop-ws', 'laptop', 'bad id', '', 'x'.repeat(129)),
  fc.string({ maxLength: 10 }),
);
const validishFrame = fc.oneof(
  fc.record({
    type: fc.constant('ready'),
    capacity: fc.oneof(fc.integer({ min: -1, max: 1001 }), scalar),
  }),
  fc.record({ type: fc.constant('renew'), id: fc.oneof(requestId, fc.string()), epoch }),
  fc.record(
    {
      type: fc.constant('result'),
      id: fc.oneof(requestId, fc.string()),
      epoch,
      status: fc.oneof(fc.constantFrom('completed', 'failed'), scalar),
      result: fc.jsonValue({ maxDepth: 4 }),
      error: fc.oneof(fc.record({ code: fc.string(), message: fc.string() }), anyJson),
    },
    { requiredKeys: ['type', 'id', 'epoch', 'status'] },
  ),
  fc.record(
    {
      type: fc.constantFrom('subscribe', 'unsubscribe'),
      runtime: runtimeName,
      requests: fc.oneof(fc.array(fc.oneof(requestId, fc.string()), { maxLength: 3 }), anyJson),
    },
    { requiredKeys: ['type', 'runtime'] },
  ),
);
type Outgoing = { text: string } | { binary: Uint8Array };
const frameArb: fc.Arbitrary<Outgoing> = fc.oneof(
  { weight: 4, arbitrary: validishFrame.map((f) => ({ text: JSON.stringify(f) })) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom(...FRAME_TYPES),
        fc.array(
          fc.tuple(fc.oneof(fc.constantFrom(...FIELD_NAMES), fc.string({ maxLength: 8 })), anyJson),
          { maxLength: 5 },
        ),
      )
      .map(([type, entries]) => ({ text: objectText([['type', type], ...entries]) })),
  },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }).map((text) => ({ text })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((text) => ({ text })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((binary) => ({ binary })) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 1, max: 20_000 }), fc.boolean())
      .map(([depth, arrays]) => ({
        text: `{"type":"result","id":"deep","epoch":1,"status":"completed","result":${arrays ? nested(depth) : deepObject(depth)}}`,
      })),
  },
);

const deepFrame: Outgoing = {
  text: `{"type":"result","id":"deep","epoch":1,"status":"completed","result":${nested(DEEP)}}`,
};

function isValid(schema: z.ZodType, frame: Outgoing): boolean {
  if ('binary' in frame) return false;
  let json: unknown;
  try {
    json = JSON.parse(frame.text);
  } catch {
    return false;
  }
  try {
    return schema.safeParse(json).success;
  } catch {
    // The oracle itself overflowed (very deep nesting): whatever it is, it is not a
    // frame the server can accept; the server must still answer it with an error.
    return false;
  }
}

function send(socket: FrameSocket, frame: Outgoing): void {
  if ('binary' in frame) socket.ws.send(frame.binary, { binary: true });
  else socket.ws.send(frame.text);
}

const describeUncaught = (errs: unknown[]) =>
  errs.map((e) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e))).join('; ');

// ---- the properties -----------------------------------------------------------------

describe.each(STORE_BACKENDS)('properties (%s store)', (_name, backend) => {
  let node: SwitchboardNode;
  let stopBackend: () => Promise<void>;
  let client: string;
  let daemon: string;

  beforeAll(async () => {
    const b = await backend();
    stopBackend = b.stop;
    node = await startTestNode(b.env);
    client = await clientToken('acme');
    daemon = await daemonToken('prop', 'acme');
    // Running requests the result/renew properties can hit with the right id.
    const batch = await api(node, 'POST', '/v1/runtimes/prop/requests/batch', {
      token: client,
      body: { requests: Array.from({ length: 20 }, (_, i) => ({ kind: 'seed', payload: i })) },
    });
    expect(batch.status).toBe(201);
    const hb = await api(node, 'POST', '/v1/daemon/heartbeat', {
      token: daemon,
      body: { max: 20 },
    });
    expect(hb.body.requests).toHaveLength(20);
    claimedIds.splice(0, claimedIds.length, ...hb.body.requests.map((r: { id: string }) => r.id));
  });
  afterAll(async () => {
    await node?.kill();
    await stopBackend?.();
  });

  /** The node is alive and still dispatches: /healthz, then a push to a fresh daemon. */
  async function stillDispatches(): Promise<void> {
    expect((await api(node, 'GET', '/healthz')).status).toBe(200);
    const rt = `after-${Math.random().toString(36).slice(2, 10)}`;
    const d = await readyDaemon(node, await daemonToken(rt, 'acme'), 1);
    const created = await api(node, 'POST', `/v1/runtimes/${rt}/requests`, {
      token: client,
      body: { kind: 'echo' },
    });
    expect(created.status).toBe(201);
    expect((await d.next('request', FRAME_TIMEOUT_MS)).request.id).toBe(created.body.id);
    await d.close();
  }

  it.each(['create', 'batch', 'heartbeat', 'result', 'renew'] as Route[])(
    'POST %s with any body: never 5xx, every error is {error:{code,message}} from the table',
    async (route) => {
      const token = route === 'create' || route === 'batch' ? client : daemon;
      await fc.assert(
        fc.asyncProperty(pathFor(route), bodyText(route), headerArb, async (path, raw, headers) => {
          const res = await fetch(`${node.url}${path}`, {
            method: 'POST',
            headers: { ...headers, authorization: `Bearer ${token}` },
            body: raw,
          });
          const text = await res.text();
          expect(res.status, text.slice(0, 300)).toBeLessThan(500);
          const body = JSON.parse(text) as unknown;
          if (res.status >= 200 && res.status < 300) {
            const ok = SUCCESS[route].safeParse(body);
            expect(ok.success, `${res.status} ${text.slice(0, 300)}`).toBe(true);
            return;
          }
          const parsed = ErrorBody.safeParse(body);
          expect(parsed.success, text.slice(0, 300)).toBe(true);
          const { code } = (body as z.infer<typeof ErrorBody>).error;
          expect(Object.keys(ERROR_STATUS), text.slice(0, 300)).toContain(code);
          expect(res.status, code).toBe(ERROR_STATUS[code]);
        }),
        { numRuns: NUM_RUNS, endOnFailure: true, examples: deepExamples(route) },
      );
    },
    20_000,
  );

  it('stores any JSON payload and result exactly as sent', async () => {
    const proto = '{"__proto__":{"polluted":true},"b":2}';
    await fc.assert(
      fc.asyncProperty(
        fc.json({ maxDepth: 4 }),
        fc.json({ maxDepth: 4 }),
        async (payloadText, resultText) => {
          const daemonRt = `roundtrip-${Math.random().toString(36).slice(2, 10)}`;
          const token = await daemonToken(daemonRt, 'acme');
          const created = await api(node, 'POST', `/v1/runtimes/${daemonRt}/requests`, {
            token: client,
            raw: `{"kind":"echo","payload":${payloadText}}`,
          });
          expect(created.status).toBe(201);
          expect(JSON.stringify(created.body.payload)).toBe(
            JSON.stringify(JSON.parse(payloadText)),
          );
          const hb = await api(node, 'POST', '/v1/daemon/heartbeat', { token, body: { max: 1 } });
          const pushed = hb.body.requests[0];
          expect(pushed.id).toBe(created.body.id);
          expect(JSON.stringify(pushed.payload)).toBe(JSON.stringify(JSON.parse(payloadText)));
          const done = await api(node, 'POST', `/v1/daemon/requests/${pushed.id}/result`, {
            token,
            raw: `{"epoch":${pushed.epoch},"status":"completed","result":${resultText}}`,
          });
          expect(done.status).toBe(200);
          const read = await api(node, 'GET', `/v1/runtimes/${daemonRt}/requests/${pushed.id}`, {
            token: client,
          });
          expect(JSON.stringify(read.body.result)).toBe(JSON.stringify(JSON.parse(resultText)));
        },
      ),
      { numRuns: 50, endOnFailure: true, examples: [[proto, proto]] },
    );
  }, 20_000);

  it('any frames on a daemon socket: one error per bad frame, only protocol frames back, no crash', async () => {
    const token = await daemonToken('prop-ws', 'acme');
    const { uncaught } = await withUncaught(() =>
      fc.assert(
        fc.asyncProperty(fc.array(frameArb, { minLength: 1, maxLength: 6 }), async (frames) => {
          const d = await FrameSocket.daemon(node, token);
          try {
            await d.next('hello', FRAME_TIMEOUT_MS);
            for (const f of frames) send(d, f);
            const sentinel = { type: 'renew', id: 'zz-sentinel', epoch: 0 };
            d.send(sentinel);
            await d.next((f) => f.id === 'zz-sentinel', FRAME_TIMEOUT_MS);
            const invalid = frames.filter((f) => !isValid(DaemonInbound, f)).length;
            // A bad result naming its request is refused with nack invalid_message,
            // anything else bad with an error frame: one answer per bad frame.
            const refused = d.all('nack').filter((f) => f.code === 'invalid_message');
            expect(d.all('error').length + refused.length).toBe(invalid);
            for (const f of d.frames) {
              const ok = DaemonOutbound.safeParse(f);
              expect(ok.success, JSON.stringify(f).slice(0, 300)).toBe(true);
            }
            expect(d.ws.readyState).toBe(d.ws.OPEN);
          } finally {
            await d.close();
          }
        }),
        { numRuns: NUM_RUNS, endOnFailure: true, examples: [[[deepFrame]]] },
      ),
    );
    expect(uncaught, describeUncaught(uncaught)).toEqual([]);
    await stillDispatches();
  }, 20_000);

  it('any frames on a client socket: one error per bad frame, only protocol frames back, own workspace only', async () => {
    const { uncaught } = await withUncaught(() =>
      fc.assert(
        fc.asyncProperty(fc.array(frameArb, { minLength: 1, maxLength: 6 }), async (frames) => {
          const c = await FrameSocket.client(node, client);
          try {
            for (const f of frames) send(c, f);
            c.send({ type: 'subscribe', runtime: 'zz-sentinel' });
            await c.next(
              (f) => f.type === 'snapshot' && f.runtime === 'zz-sentinel',
              FRAME_TIMEOUT_MS,
            );
            const invalid = frames.filter((f) => !isValid(ClientInbound, f)).length;
            expect(c.all('error')).toHaveLength(invalid);
            for (const f of c.frames) {
              const ok = ClientOutbound.safeParse(f);
              expect(ok.success, JSON.stringify(f).slice(0, 300)).toBe(true);
              if (f.type === 'snapshot') {
                for (const r of f.requests) {
                  expect(r).toMatchObject({ workspace_id: 'acme', runtime_id: f.runtime });
                }
                expect(f.runtime_info.id).toBe(f.runtime);
              }
            }
            expect(c.ws.readyState).toBe(c.ws.OPEN);
          } finally {
            await c.close();
          }
        }),
        { numRuns: NUM_RUNS, endOnFailure: true, examples: [[[deepFrame]]] },
      ),
    );
    expect(uncaught, describeUncaught(uncaught)).toEqual([]);
    await stillDispatches();
  }, 20_000);
});
