/**
 * Tokens (DESIGN.md section 4, Auth): HS256 JWTs signed with HUB_SECRET, claims `sub`,
 * `ws` (workspace), `role` and, for daemons, `rt` (the runtime). Claims are a zod schema;
 * `verify` accepts only HS256 with an `exp`, and answers every failure with the same
 * 401 so a caller cannot tell a forged token from an expired one.
 *
 * @example
 * const auth = new Auth(config.hubSecret);
 * const token = await auth.sign({ sub: 'ci', ws: 'acme', role: 'daemon', rt: 'laptop' }, '30d');
 * const principal = await auth.verify(token); // { sub, workspace, role, runtime }
 */
import { webcrypto } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { RuntimeId, WorkspaceId } from '../protocol/index.js';

const ALG = 'HS256';
/** Node clocks may drift apart a little; a token is not rejected for a few seconds. */
const CLOCK_TOLERANCE_S = 5;
export const MIN_SECRET_BYTES = 32;

export const Role = z.enum(['client', 'daemon']);
export type Role = z.infer<typeof Role>;

/** What a token says, as signed. */
export const TokenClaims = z
  .object({
    sub: z.string().min(1).max(256),
    ws: WorkspaceId,
    role: Role,
    rt: RuntimeId.optional(),
  })
  .refine((c) => c.role !== 'daemon' || c.rt !== undefined, {
    message: 'a daemon token needs rt (its runtime)',
    path: ['rt'],
  });
export type TokenClaims = z.infer<typeof TokenClaims>;

/** Who is calling, once the token is verified. */
export interface Principal {
  sub: string;
  workspace: string;
  role: Role;
  /** The daemon's runtime (daemon tokens only). */
  runtime?: string;
}

/**
 * Every authentication failure: one code (`unauthorized`), so a caller cannot tell a
 * forged token from an expired one. The HTTP layer maps it to 401.
 */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  readonly code = 'unauthorized';
}

const unauthorized = (): AuthError => new AuthError('missing, invalid or expired token');

/** Verified tokens remembered (until their `exp`), oldest dropped first. */
export const VERIFIED_CACHE_SIZE = 10_000;

export class Auth {
  /**
   * A CryptoKey imported once: jose uses it as it is, where a KeyObject or raw bytes are
   * exported and imported again on every verify (about 3 times the cost).
   */
  readonly #key: Promise<webcrypto.CryptoKey>;
  /** token -> who it is and until when (ms): a token seen again skips the HMAC. */
  readonly #verified = new Map<string, { principal: Principal; expiresAt: number }>();

  constructor(secret: string) {
    const bytes = Buffer.from(secret, 'utf8');
    if (bytes.byteLength < MIN_SECRET_BYTES) {
      throw new Error(`the token secret must be at least ${MIN_SECRET_BYTES} bytes`);
    }
    this.#key = webcrypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ]);
  }

  /**
   * Mints a token. `ttl` is a jose duration ('30d', '2h') or a number of seconds.
   * Throws when the claims are invalid (e.g. a daemon token without `rt`).
   */
  async sign(claims: TokenClaims, ttl: string | number): Promise<string> {
    const parsed = TokenClaims.safeParse(claims);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`invalid token claims: ${issue?.path.join('.')}: ${issue?.message}`);
    }
    if (typeof ttl === 'number' && !(Number.isFinite(ttl) && ttl > 0)) {
      throw new Error(`invalid token ttl: ${ttl}`);
    }
    const { sub, ws, role, rt } = parsed.data;
    const exp = typeof ttl === 'number' ? Math.floor(Date.now() / 1000) + Math.ceil(ttl) : ttl;
    return new SignJWT(rt === undefined ? { ws, role } : { ws, role, rt })
      .setProtectedHeader({ alg: ALG, typ: 'JWT' })
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(await this.#key);
  }

  /** Verifies a token; rejects `AuthError` whatever is wrong with it. */
  async verify(token: string): Promise<Principal> {
    const known = this.#verified.get(token);
    if (known) {
      if (Date.now() < known.expiresAt) return known.principal;
      this.#verified.delete(token);
    }
    let payload: unknown;
    try {
      ({ payload } = await jwtVerify(token, await this.#key, {
        algorithms: [ALG],
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_S,
      }));
    } catch {
      throw unauthorized();
    }
    const claims = TokenClaims.safeParse(payload);
    if (!claims.success) throw unauthorized();
    const { sub, ws, role, rt } = claims.data;
    const principal: Principal =
      role === 'daemon'
        ? { sub, workspace: ws, role, runtime: rt as string }
        : { sub, workspace: ws, role };
    this.#remember(token, principal, (payload as { exp: number }).exp * 1000);
    return principal;
  }

  /** Remembers a verified token until its `exp` (without the clock tolerance). */
  #remember(token: string, principal: Principal, expiresAt: number): void {
    if (this.#verified.size >= VERIFIED_CACHE_SIZE) {
      const oldest = this.#verified.keys().next().value;
      if (oldest !== undefined) this.#verified.delete(oldest);
    }
    this.#verified.set(token, { principal: Object.freeze(principal), expiresAt });
  }
}

/**
 * The one Authorization header of a call or an upgrade, given all it sent (see
 * src/http/raw-headers.ts): none -> undefined; two or more, even identical -> 401, since
 * a proxy and the hub could each read a different one.
 */
export function singleAuthorization(values: readonly string[]): string | undefined {
  if (values.length > 1) {
    throw new AuthError('exactly one Authorization header is allowed');
  }
  return values[0];
}

/**
 * The token of a call: `Authorization: Bearer <token>`, else the `access_token` query
 * parameter (websockets only: browsers cannot set headers on them). Undefined when
 * neither holds one; a malformed Authorization header counts as none.
 */
export function bearerToken(
  headerValue: string | null | undefined,
  queryValue?: string | null,
): string | undefined {
  if (headerValue) {
    const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(headerValue);
    return match?.[1];
  }
  return queryValue ? queryValue : undefined;
}
