/**
 * The environment of a hub node in a multi-node cluster: one definition, used by the
 * local cluster runner (`npm run cluster`) and checked against docker-compose.yml by a
 * test, so the two cannot drift. Only the placement variables (where the node listens,
 * where Redis is, the secret) differ between them; everything else must be equal.
 */

/** Variables whose values depend on where the node runs (compose vs this machine). */
export const PLACEMENT_VARIABLES = ['PORT', 'HOST', 'REDIS_URL', 'HUB_SECRET'] as const;

export interface Placement {
  port: number;
  host: string;
  redisUrl: string;
  secret: string;
}

/** The environment of hub node `index` (1-based): `hub-1`, `hub-2`, ... */
export function clusterNodeEnv(index: number, placement: Placement): Record<string, string> {
  return {
    NODE_ID: `hub-${index}`,
    PORT: String(placement.port),
    HOST: placement.host,
    REDIS_URL: placement.redisUrl,
    HUB_SECRET: placement.secret,
    HUB_PREFIX: 'sb',
    HEARTBEAT_INTERVAL_MS: '15000',
    LEASE_MS: '30000',
    PENDING_TIMEOUT_MS: '60000',
    RETENTION_MS: '3600000',
    SWEEP_INTERVAL_MS: '1000',
    SHUTDOWN_GRACE_MS: '10000',
    MAX_PAYLOAD_BYTES: '1048576',
    LOG_LEVEL: 'info',
  };
}

/**
 * The redis-server settings the cluster needs: AOF on (fsync every second) so a restart
 * keeps requests, and no eviction (an evicted record is a lost request).
 */
export const REDIS_SERVER_ARGS = [
  '--appendonly',
  'yes',
  '--appendfsync',
  'everysec',
  '--maxmemory-policy',
  'noeviction',
] as const;
