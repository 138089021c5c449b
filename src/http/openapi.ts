/**
 * GET /openapi.json: an OpenAPI 3.1 document generated from the same zod schemas the
 * routes validate with (zod 4 `z.toJSONSchema`), so the document cannot drift from them.
 */
import { z } from 'zod';
import { RuntimeInfoSchema } from '../../hub/protocol.js';
import { CreateBatchBody, CreateRequestBody, DaemonRequest, Request } from '../../stores/domain.js';
import { openApiPaths, REF } from './openapi-paths.js';
import {
  CancelBody,
  ErrorBodySchema,
  HeartbeatBody,
  HeartbeatResponse,
  RenewBody,
  RenewResponse,
  ResultBody,
} from './schemas.js';

type Json = Record<string, unknown>;

/** Request bodies are shown as sent (defaults optional), responses as returned. */
const INPUTS: Record<string, z.ZodType> = {
  CreateRequestBody,
  CreateBatchBody,
  CancelBody,
  HeartbeatBody,
  ResultBody,
  RenewBody,
};
const OUTPUTS: Record<string, z.ZodType> = {
  Request,
  RequestList: z.object({ requests: z.array(Request), next_cursor: z.string().nullable() }),
  BatchResponse: z.object({ requests: z.array(Request) }),
  DaemonRequest,
  HeartbeatResponse,
  ResultResponse: z.object({ request: Request }),
  RenewResponse,
  RuntimeInfo: RuntimeInfoSchema,
  RuntimeList: z.object({ runtimes: z.array(RuntimeInfoSchema) }),
  Error: ErrorBodySchema,
};

function convert(schemas: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const out = z.toJSONSchema(registry, { uri: (id) => `${REF}${id}`, io, unrepresentable: 'any' });
  const result: Record<string, Json> = {};
  for (const [id, schema] of Object.entries(out.schemas)) {
    if (id === '__shared') continue;
    const { $schema: _s, $id: _i, ...rest } = schema as Json;
    result[id] = rest;
  }
  return result;
}

/**
 * The only recursive schema is `z.json()` (payloads and results): zod extracts it into a
 * `__shared` document; point those references at one `JsonValue` component instead.
 */
function relink(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(relink);
  if (node === null || typeof node !== 'object') return node;
  const obj = node as Json;
  if (typeof obj.$ref === 'string' && obj.$ref.startsWith(`${REF}__shared`)) {
    return { $ref: `${REF}JsonValue` };
  }
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, relink(v)]));
}

export function buildOpenApi(): Json {
  const schemas = relink({
    ...convert(INPUTS, 'input'),
    ...convert(OUTPUTS, 'output'),
  }) as Record<string, Json>;
  schemas.JsonValue = { description: 'any JSON value' };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchboard',
      version: '1',
      description: 'Realtime dispatch hub, wire protocol v1',
    },
    paths: openApiPaths(),
    components: {
      schemas,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
    },
  };
}
