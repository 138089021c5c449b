/**
 * The node's configuration (DESIGN.md section 5): environment variables validated by one
 * zod schema, turned into a camelCase `Config`. A bad value is a startup error that names
 * every bad variable and why; a secret's value is never echoed.
 *
 * Modes: REDIS_URL set -> Redis store, HUB_SECRET required (>= 32 bytes). Neither set ->
 * dev mode: embedded store and a random secret for this process. HUB_SECRET alone ->
 * embedded store with stable tokens.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { parseCreateRate } from '../stores/rate.js';
import { MIN_SECRET_BYTES } from './auth.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(
      `invalid configuration: ${problems.map((p) => `${p.variable}: ${p.message}`).join('; ')}`,
    );
  }
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const PREFIX_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
const NODE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * One variable as the environment holds it. A blank value counts as unset; numbers,
 * booleans and null are accepted too, so a parsed docker-compose `environment:` validates.
 */
const verbatim = z.preprocess(
  (v) => (typeof v === 'number' || typeof v === 'boolean' ? String(v) : (v ?? undefined)),
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? undefined : v)),
);
/** The same, trimmed (everything but the secret). */
const raw = verbatim.transform((v) => v?.trim());

function int(fallback: number, min: number, max: number) {
  return raw.transform((v, ctx) => {
    if (v === undefined) return fallback;
    const n = /^-?\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({
        code: 'custom',
        message: `expected an integer >= ${min} and <= ${max}, got ${JSON.stringify(v)}`,
      });
      return z.NEVER;
    }
    return n;
  });
}

function matching(pattern: RegExp, what: string) {
  return raw.transform((v, ctx) => {
    if (v === undefined) return undefined;
    if (!pattern.test(v)) {
      ctx.addIssue({ code: 'custom', message: `expected ${what}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return v;
  });
}

const list = (v: string | undefined): string[] =>
  v === undefined
    ? []
    : v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');

function isRedisUrl(s: string): boolean {
  try {
    const url = new URL(s);
    return (url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '';
  } catch {
    return false;
  }
}

function isOrigin(s: string): boolean {
  if (s === '*') return true;
  try {
    const url = new URL(s);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === s;
  } catch {
    return false;
  }
}

const defaultNodeId = (): string =>
  `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9._:-]/g, '-').slice(-128);

/** The environment variables, as zod sees them (unknown variables are ignored). */
export const EnvSchema = z.object({
  PORT: int(8080, 0, 65_535),
  /** Unset: 127.0.0.1 in dev mode (its token-bearing page stays local), else 0.0.0.0. */
  HOST: raw,
  NODE_ID: matching(NODE_ID_PATTERN, '[A-Za-z0-9._:-]{1,128}'),
  REDIS_URL: raw,
  REDIS_CLUSTER: raw.transform((v, ctx) => {
    if (v === undefined || /^(false|0|no)$/i.test(v)) return false;
    if (/^(true|1|yes)$/i.test(v)) return true;
    ctx.addIssue({ code: 'custom', message: `expected true or false, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }),
  HUB_SECRET: verbatim.transform((v, ctx) => {
    if (v === undefined) return undefined;
    const bytes = Buffer.byteLength(v, 'utf8');
    if (bytes < MIN_SECRET_BYTES) {
      ctx.addIssue({
        code: 'custom',
        message: `must be at least ${MIN_SECRET_BYTES} bytes, got ${bytes}`,
      });
      return z.NEVER;
    }
    return v;
  }),
  HUB_PREFIX: matching(PREFIX_PATTERN, '[A-Za-z0-9_.-]{1,64}').transform((v) => v ?? 'sb'),
  HEARTBEAT_INTERVAL_MS: int(15_000, 100, 600_000),
  LEASE_MS: int(30_000, 100, 3_600_000),
  PENDING_TIMEOUT_MS: int(60_000, 100, 7 * 24 * 3_600_000),
  RETENTION_MS: int(3_600_000, 1_000, 30 * 24 * 3_600_000),
  SWEEP_INTERVAL_MS: int(1_000, 50, 60_000),
  SHUTDOWN_GRACE_MS: int(10_000, 0, 600_000),
  MAX_PAYLOAD_BYTES: int(1_048_576, 1_024, 64 * 1_048_576),
  // DESIGN.md section 6: what one request's output may hold.
  MAX_OUTPUT_CHUNKS: int(10_000, 1, 10_000_000),
  MAX_OUTPUT_BYTES: int(16 * 1_048_576, 1_024, 4_096 * 1_048_576),
  // DESIGN.md section 7: what one peer may cost its node.
  MAX_SOCKET_BUFFER_BYTES: int(8 * 1_048_576, 65_536, 1_024 * 1_048_576),
  READY_TIMEOUT_MS: int(30_000, 100, 600_000),
  STORE_LOST_DRAIN_MS: int(5_000, 100, 600_000),
  MAX_BAD_FRAMES: int(10, 1, 10_000),
  MAX_SUBSCRIBED_RUNTIMES: int(128, 1, 100_000),
  MAX_SUBSCRIBED_IDS: int(1_000, 1, 1_000_000),
  // Quotas: what one tenant may put in the store.
  MAX_PENDING_PER_RUNTIME: int(100_000, 1, 100_000_000),
  CREATE_RATE_PER_WORKSPACE: raw.transform((v, ctx) => {
    if (v === undefined || v === '' || /^off$/i.test(v)) return null;
    const rate = parseCreateRate(v);
    if (rate) return rate;
    ctx.addIssue({
      code: 'custom',
      message: `expected RATE[/BURST] in requests per second, like 50 or 50/100, or off; got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }),
  LOG_LEVEL: raw.transform((v, ctx) => {
    const level = (v ?? 'info').toLowerCase();
    if ((LOG_LEVELS as readonly string[]).includes(level))
      return level as (typeof LOG_LEVELS)[number];
    ctx.addIssue({
      code: 'custom',
      message: `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }),
  /** OpenTelemetry: export spans over OTLP/HTTP to `<this>/v1/traces` (unset: no tracing). */
  OTEL_EXPORTER_OTLP_ENDPOINT: raw.transform((v, ctx) => {
    if (v === undefined || v === '') return undefined;
    if (/^https?:\/\/[^\s/]+(\/\S*)?$/.test(v)) return v;
    ctx.addIssue({
      code: 'custom',
      message: `expected an http:// or https:// URL, got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }),
  CORS_ORIGINS: raw.transform((v, ctx) => {
    const origins = list(v);
    const bad = origins.filter((o) => !isOrigin(o));
    if (bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `expected comma-separated origins like https://app.example.com or *, got ${JSON.stringify(bad.join(','))}`,
      });
      return z.NEVER;
    }
    return origins;
  }),
});

/**
 * The whole configuration: the variables, the rules between them, and the camelCase
 * result. Validate a docker-compose service's `environment:` with `ConfigSchema.safeParse`.
 */
export const ConfigSchema = EnvSchema.superRefine(
  (env, ctx) => {
    // Runs even when a variable failed (`when`), so one error names every bad variable;
    // a failed variable holds no usable value here, hence the typeof guards.
    const issue = (variable: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [variable], message });
    const cluster = env.REDIS_CLUSTER === true;
    if (typeof env.REDIS_URL === 'string') {
      const urls = cluster ? list(env.REDIS_URL) : [env.REDIS_URL];
      if (urls.length === 0 || !urls.every(isRedisUrl)) {
        issue(
          'REDIS_URL',
          cluster
            ? 'expected a comma-separated list of redis:// or rediss:// URLs (REDIS_CLUSTER=true)'
            : 'expected a redis:// or rediss:// URL',
        );
      }
      if (env.HUB_SECRET === undefined) {
        issue('HUB_SECRET', `required with REDIS_URL (at least ${MIN_SECRET_BYTES} bytes)`);
      }
    } else if (cluster) {
      issue('REDIS_CLUSTER', 'needs REDIS_URL (the cluster startup nodes)');
    }
  },
  { when: () => true },
).transform((env) => {
  const devMode = env.REDIS_URL === undefined && env.HUB_SECRET === undefined;
  return {
    port: env.PORT,
    host: env.HOST ?? (devMode ? '127.0.0.1' : '0.0.0.0'),
    nodeId: env.NODE_ID ?? defaultNodeId(),
    redisUrl: env.REDIS_URL,
    redisCluster: env.REDIS_CLUSTER,
    hubSecret: env.HUB_SECRET ?? randomBytes(32).toString('base64url'),
    devMode,
    prefix: env.HUB_PREFIX,
    heartbeatIntervalMs: env.HEARTBEAT_INTERVAL_MS,
    leaseMs: env.LEASE_MS,
    pendingTimeoutMs: env.PENDING_TIMEOUT_MS,
    retentionMs: env.RETENTION_MS,
    sweepIntervalMs: env.SWEEP_INTERVAL_MS,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    maxPayloadBytes: env.MAX_PAYLOAD_BYTES,
    maxOutputChunks: env.MAX_OUTPUT_CHUNKS,
    maxOutputBytes: env.MAX_OUTPUT_BYTES,
    maxSocketBufferBytes: env.MAX_SOCKET_BUFFER_BYTES,
    readyTimeoutMs: env.READY_TIMEOUT_MS,
    storeLostDrainMs: env.STORE_LOST_DRAIN_MS,
    maxBadFrames: env.MAX_BAD_FRAMES,
    maxSubscribedRuntimes: env.MAX_SUBSCRIBED_RUNTIMES,
    maxSubscribedIds: env.MAX_SUBSCRIBED_IDS,
    maxPendingPerRuntime: env.MAX_PENDING_PER_RUNTIME,
    createRate: env.CREATE_RATE_PER_WORKSPACE,
    logLevel: env.LOG_LEVEL,
    corsOrigins: env.CORS_ORIGINS,
    otelEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT,
  };
});

export type Config = z.output<typeof ConfigSchema>;

/** The Redis startup nodes: REDIS_URL, or with REDIS_CLUSTER=true each URL of its list. */
export function redisUrls(config: Config): string[] {
  if (config.redisUrl === undefined) return [];
  return config.redisCluster ? list(config.redisUrl) : [config.redisUrl];
}

/** Reads the configuration; throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = ConfigSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  throw new ConfigError(
    parsed.error.issues.map((i) => ({
      variable: String(i.path[0] ?? '(environment)'),
      message: i.message,
    })),
  );
}
