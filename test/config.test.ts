/** Configuration: defaults, dev mode, HUB_SECRET rules, and one clear error per bad variable. */
import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigSchema, loadConfig, redisUrls } from '../src/config.js';

const SECRET = 's'.repeat(32);

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems.map((p) => p.variable);
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the defaults of DESIGN.md section 5 in dev mode', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      redisUrl: undefined,
      redisCluster: false,
      devMode: true,
      prefix: 'sb',
      heartbeatIntervalMs: 15_000,
      leaseMs: 30_000,
      pendingTimeoutMs: 60_000,
      retentionMs: 3_600_000,
      sweepIntervalMs: 1_000,
      shutdownGraceMs: 10_000,
      maxPayloadBytes: 1_048_576,
      maxSocketBufferBytes: 8 * 1_048_576,
      readyTimeoutMs: 30_000,
      storeLostDrainMs: 5_000,
      maxBadFrames: 10,
      maxSubscribedRuntimes: 128,
      maxSubscribedIds: 1_000,
      logLevel: 'info',
      corsOrigins: [],
    });
    expect(config.nodeId).toMatch(new RegExp(`-${process.pid}$`));
    expect(Buffer.from(config.hubSecret, 'base64url')).toHaveLength(32);
    expect(loadConfig({}).hubSecret).not.toBe(config.hubSecret);
  });

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '9000',
      HOST: '127.0.0.1',
      NODE_ID: 'node-a',
      REDIS_URL: 'redis://redis:6379/0',
      HUB_SECRET: SECRET,
      HUB_PREFIX: 'sb.test_1',
      HEARTBEAT_INTERVAL_MS: '5000',
      LEASE_MS: '10000',
      PENDING_TIMEOUT_MS: '20000',
      RETENTION_MS: '60000',
      SWEEP_INTERVAL_MS: '250',
      SHUTDOWN_GRACE_MS: '0',
      MAX_PAYLOAD_BYTES: '65536',
      MAX_OUTPUT_CHUNKS: '500',
      LOG_LEVEL: 'DEBUG',
      CORS_ORIGINS: 'https://a.example.com, http://localhost:5173',
      UNRELATED: 'ignored',
    });
    expect(config).toEqual({
      port: 9000,
      host: '127.0.0.1',
      nodeId: 'node-a',
      redisUrl: 'redis://redis:6379/0',
      redisCluster: false,
      hubSecret: SECRET,
      devMode: false,
      prefix: 'sb.test_1',
      heartbeatIntervalMs: 5000,
      leaseMs: 10000,
      pendingTimeoutMs: 20000,
      retentionMs: 60000,
      sweepIntervalMs: 250,
      shutdownGraceMs: 0,
      maxPayloadBytes: 65536,
      maxOutputChunks: 500,
      maxOutputBytes: 16 * 1_048_576,
      maxSocketBufferBytes: 8 * 1_048_576,
      readyTimeoutMs: 30_000,
      storeLostDrainMs: 5_000,
      maxBadFrames: 10,
      maxSubscribedRuntimes: 128,
      maxSubscribedIds: 1_000,
      maxPendingPerRuntime: 100_000,
      createRate: null,
      logLevel: 'debug',
      corsOrigins: ['https://a.example.com', 'http://localhost:5173'],
    });
    expect(redisUrls(config)).toEqual(['redis://redis:6379/0']);
  });

  it('treats empty values as unset', () => {
    const config = loadConfig({
      PORT: '',
      HOST: ' ',
      REDIS_URL: '',
      HUB_SECRET: '',
      CORS_ORIGINS: '',
    });
    expect(config.port).toBe(8080);
    expect(config.host).toBe('127.0.0.1');
    expect(config.devMode).toBe(true);
    expect(config.corsOrigins).toEqual([]);
  });

  it('reads the limits of DESIGN.md section 7 and binds dev mode to loopback', () => {
    const config = loadConfig({
      MAX_SOCKET_BUFFER_BYTES: '65536',
      READY_TIMEOUT_MS: '500',
      STORE_LOST_DRAIN_MS: '1000',
      MAX_BAD_FRAMES: '3',
      MAX_SUBSCRIBED_RUNTIMES: '2',
      MAX_SUBSCRIBED_IDS: '5',
    });
    expect(config).toMatchObject({
      maxSocketBufferBytes: 65_536,
      readyTimeoutMs: 500,
      storeLostDrainMs: 1_000,
      maxBadFrames: 3,
      maxSubscribedRuntimes: 2,
      maxSubscribedIds: 5,
      host: '127.0.0.1',
    });
    expect(loadConfig({ HUB_SECRET: SECRET }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(problems({ MAX_BAD_FRAMES: '0', READY_TIMEOUT_MS: 'soon' })).toEqual([
      'READY_TIMEOUT_MS',
      'MAX_BAD_FRAMES',
    ]);
  });

  it('reads the quotas: MAX_PENDING_PER_RUNTIME and CREATE_RATE_PER_WORKSPACE as RATE[/BURST]', () => {
    expect(loadConfig({})).toMatchObject({ maxPendingPerRuntime: 100_000, createRate: null });
    expect(
      loadConfig({ MAX_PENDING_PER_RUNTIME: '5', CREATE_RATE_PER_WORKSPACE: '50' }),
    ).toMatchObject({
      maxPendingPerRuntime: 5,
      createRate: { rate: 50, burst: 50 },
    });
    expect(loadConfig({ CREATE_RATE_PER_WORKSPACE: '0.5/10' }).createRate).toEqual({
      rate: 0.5,
      burst: 10,
    });
    expect(loadConfig({ CREATE_RATE_PER_WORKSPACE: 'off' }).createRate).toBeNull();
    for (const bad of ['fast', '50/', '0', '-1/5', '10/0']) {
      expect(problems({ CREATE_RATE_PER_WORKSPACE: bad }), bad).toEqual([
        'CREATE_RATE_PER_WORKSPACE',
      ]);
    }
    expect(problems({ MAX_PENDING_PER_RUNTIME: '0' })).toEqual(['MAX_PENDING_PER_RUNTIME']);
  });

  it('runs the embedded store with a stable secret when only HUB_SECRET is set', () => {
    const config = loadConfig({ HUB_SECRET: SECRET });
    expect(config.devMode).toBe(false);
    expect(config.redisUrl).toBeUndefined();
    expect(config.hubSecret).toBe(SECRET);
  });

  it('requires a HUB_SECRET of at least 32 bytes with REDIS_URL', () => {
    expect(problems({ REDIS_URL: 'redis://r:6379' })).toEqual(['HUB_SECRET']);
    expect(problems({ REDIS_URL: 'redis://r:6379', HUB_SECRET: 's'.repeat(31) })).toEqual([
      'HUB_SECRET',
    ]);
    expect(problems({ HUB_SECRET: 'short' })).toEqual(['HUB_SECRET']);
    // 11 three-byte characters: 11 characters, 33 bytes.
    expect(loadConfig({ REDIS_URL: 'redis://r', HUB_SECRET: '€'.repeat(11) }).devMode).toBe(false);
  });

  it('keeps the secret verbatim (no trimming)', () => {
    const secret = ` ${SECRET} `;
    expect(loadConfig({ HUB_SECRET: secret }).hubSecret).toBe(secret);
  });

  it('never echoes the secret in an error', () => {
    expect(() => loadConfig({ HUB_SECRET: 'hunter2' })).toThrow(/HUB_SECRET: must be at least 32/);
    expect(() => loadConfig({ HUB_SECRET: 'hunter2' })).not.toThrow(/hunter2/);
  });

  it('takes a comma-separated list of startup nodes with REDIS_CLUSTER=true', () => {
    const config = loadConfig({
      REDIS_URL: 'redis://a:7000, redis://b:7001,redis://c:7002',
      REDIS_CLUSTER: 'true',
      HUB_SECRET: SECRET,
    });
    expect(config.redisCluster).toBe(true);
    expect(redisUrls(config)).toEqual(['redis://a:7000', 'redis://b:7001', 'redis://c:7002']);
    expect(problems({ REDIS_CLUSTER: 'true' })).toEqual(['REDIS_CLUSTER']);
    expect(
      problems({ REDIS_URL: 'redis://a:1,b:2', REDIS_CLUSTER: '1', HUB_SECRET: SECRET }),
    ).toEqual(['REDIS_URL']);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '80.5'],
    ['NODE_ID', 'has space'],
    ['REDIS_URL', 'localhost:6379'],
    ['REDIS_CLUSTER', 'maybe'],
    ['HUB_PREFIX', 'sb{x}'],
    ['HUB_PREFIX', 'a:b'],
    ['HEARTBEAT_INTERVAL_MS', '0'],
    ['LEASE_MS', 'abc'],
    ['LEASE_MS', '99'],
    ['PENDING_TIMEOUT_MS', '-5'],
    ['RETENTION_MS', '1e3'],
    ['SWEEP_INTERVAL_MS', '10'],
    ['SHUTDOWN_GRACE_MS', '600001'],
    ['MAX_PAYLOAD_BYTES', '12'],
    ['MAX_OUTPUT_CHUNKS', '0'],
    ['LOG_LEVEL', 'verbose'],
    ['CORS_ORIGINS', 'app.example.com'],
    ['CORS_ORIGINS', 'https://a.example.com/path'],
  ])('names %s when it is %j', (variable, value) => {
    const env: Record<string, string> = { HUB_SECRET: SECRET, [variable]: value };
    if (variable === 'REDIS_CLUSTER') env.REDIS_URL = 'redis://r:6379';
    expect(problems(env)).toEqual([variable]);
    expect(() => loadConfig(env)).toThrow(new RegExp(`^invalid configuration: ${variable}: `));
  });

  it('names every bad variable at once', () => {
    expect(() => loadConfig({ LEASE_MS: 'abc', PORT: '-1', REDIS_URL: 'redis://r' })).toThrow(
      'invalid configuration: PORT: expected an integer >= 0 and <= 65535, got "-1"; ' +
        'LEASE_MS: expected an integer >= 100 and <= 3600000, got "abc"; ' +
        'HUB_SECRET: required with REDIS_URL (at least 32 bytes)',
    );
  });
});

describe('ConfigSchema', () => {
  it('validates a docker-compose environment map (numbers and booleans included)', () => {
    const compose = {
      REDIS_URL: 'redis://redis:6379',
      HUB_SECRET: SECRET,
      PORT: 8080,
      REDIS_CLUSTER: false,
      SWEEP_INTERVAL_MS: 500,
      LOG_LEVEL: null,
    };
    const parsed = ConfigSchema.safeParse(compose);
    expect(parsed.success).toBe(true);
    expect(parsed.data?.sweepIntervalMs).toBe(500);
    const bad = ConfigSchema.safeParse({ ...compose, HUB_SECRET: undefined });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => i.path[0])).toEqual(['HUB_SECRET']);
  });
});
