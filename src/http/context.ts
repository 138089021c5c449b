/**
 * The request context every route shares (request id, per-request logger, the verified
 * principal) and the guards in front of /v1: draining and the role check.
 */
import type { IncomingMessage } from 'node:http';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import type { RuntimeRef } from '../../stores/domain.js';
import { type Auth, bearerToken, type Principal, type Role, singleAuthorization } from '../auth.js';
import type { Config } from '../config.js';
import { HttpError } from './errors.js';
import type { HubApi } from './hub-api.js';
import { headerValues } from './raw-headers.js';

/** What the HTTP app is built from (the node assembles it). */
export interface AppDeps {
  hub: HubApi;
  auth: Auth;
  config: Config;
  logger: Logger;
  metricsText(): Promise<{ contentType: string; body: string }>;
  ready(): Promise<{ ok: boolean; checks: Record<string, boolean | string> }>;
  /**
   * Dev mode only: a client token the dashboard page carries, so it works with no setup.
   * Never set it outside dev mode: anyone who can load `/` gets the token.
   */
  devClientToken?: string;
}

export interface AppEnv {
  /** What @hono/node-server passes as `c.env`; absent in process (`app.request`). */
  Bindings: { incoming?: IncomingMessage };
  Variables: {
    requestId: string;
    log: Logger;
    principal: Principal;
    /** MAX_PAYLOAD_BYTES, for the route that reads the body (src/http/edge.ts). */
    maxBodyBytes: number;
    /** Set once the body was read to its end: the connection may then be kept. */
    bodyRead: boolean;
  };
}

/** While the node shuts down, new /v1 calls go elsewhere (the load balancer retries). */
export function rejectWhileDraining(hub: HubApi): MiddlewareHandler<AppEnv> {
  return async (_c, next) => {
    if (hub.draining) throw new HttpError('draining', 'this node is shutting down');
    await next();
  };
}

/**
 * Verifies the bearer token (header only: query-string tokens are for websockets) and
 * requires `role`: no, two or a bad token -> 401, the other role -> 403. Runs before
 * any body is read.
 */
export function requireRole(auth: Auth, role: Role): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const token = bearerToken(singleAuthorization(headerValues(c, 'authorization')));
    if (token === undefined) {
      throw new HttpError('unauthorized', 'missing, invalid or expired token');
    }
    const principal = await auth.verify(token);
    if (principal.role !== role) {
      throw new HttpError('forbidden', `this route needs a ${role} token`);
    }
    c.set('principal', principal);
    await next();
  };
}

/** The daemon's runtime: a daemon token always names one. */
export function daemonRuntime(principal: Principal): RuntimeRef {
  return { workspace: principal.workspace, runtime: principal.runtime as string };
}
