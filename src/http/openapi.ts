/**
 * GET /openapi.json: an OpenAPI 3.1 document generated from the same zod schemas the
 * routes validate with (zod 4 `z.toJSONSchema`), so the document cannot drift from them.
 */
import { z } from 'zod';
import {
  CreateBatchBody,
  CreateRequestBody,
  DaemonRequest,
  JsonValue,
  MAX_JSON_DEPTH,
  OutputAck,
  OutputBody,
  OutputPage,
  Request,
  RuntimeInfo,
  WorkspaceStats,
} from '../../protocol/index.js';
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
  OutputBody,
};
const OUTPUTS: Record<string, z.ZodType> = {
  Request,
  RequestList: z.object({ requests: z.array(Request), next_cursor: z.string().nullable() }),
  BatchResponse: z.object({ requests: z.array(Request) }),
  DaemonRequest,
  HeartbeatResponse,
  ResultResponse: z.object({ request: Request }),
  RenewResponse,
  OutputAck,
  OutputPage,
  RuntimeInfo: RuntimeInfo,
  RuntimeList: z.object({ runtimes: z.array(RuntimeInfo) }),
  WorkspaceStats,
  Error: ErrorBodySchema,
};

function convert(schemas: Record<string, z.ZodType>, io: 'input' | 'output'): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  registry.add(JsonValue, { id: 'JsonValue' });
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

export function buildOpenApi(): Json {
  const schemas = { ...convert(INPUTS, 'input'), ...convert(OUTPUTS, 'output') };
  // zod cannot describe the custom JSON check; say in words what it accepts.
  schemas.JsonValue = { description: `any JSON value, nested at most ${MAX_JSON_DEPTH} levels` };
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
