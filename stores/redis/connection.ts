/**
 * Redis connections for the store: fail fast instead of queueing. A command issued
 * while Redis is unreachable rejects at once (no offline queue), one in flight when the
 * connection drops is not resent (a resent claim could apply twice), and every command
 * is bounded by `commandTimeoutMs`. Every connection has an `error` listener.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';

export interface RedisTarget {
  /** redis://host:port (standalone) */
  url?: string;
  /** Redis Cluster startup nodes; when set, `url` is ignored. */
  cluster?: { host: string; port: number }[];
  /** Credentials and TLS for cluster nodes (a standalone `url` carries its own). */
  username?: string;
  password?: string;
  tls?: boolean;
  commandTimeoutMs?: number;
  /** Client name shown by CLIENT LIST. */
  name?: string;
}

export type RedisConnection = Redis | Cluster;

function baseOptions(target: RedisTarget): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: target.commandTimeoutMs ?? 2000,
    connectTimeout: 2000,
    connectionName: target.name,
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.tls ? { tls: {} } : {}),
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  };
}

/**
 * Opens a connection and waits until it is ready. `onError` receives connection errors
 * (reconnects happen on their own); without it errors are ignored, never thrown.
 */
export async function openRedis(
  target: RedisTarget,
  onError: (err: Error) => void = () => {},
  extra: RedisOptions = {},
): Promise<RedisConnection> {
  const options = { ...baseOptions(target), ...extra };
  const conn: RedisConnection = target.cluster
    ? new Cluster(target.cluster, {
        lazyConnect: true,
        enableOfflineQueue: false,
        redisOptions: options,
        clusterRetryStrategy: options.retryStrategy,
      })
    : new Redis(target.url ?? 'redis://127.0.0.1:6379', options);
  conn.on('error', onError);
  try {
    await conn.connect();
  } catch (err) {
    conn.disconnect();
    throw err;
  }
  return conn;
}
