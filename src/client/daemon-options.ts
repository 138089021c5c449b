/** The daemon SDK's options (`connectDaemon(options)`) and their defaults. */
import type { Handler } from './handler.js';

export interface DaemonOptions {
  /** The hub's base URL (http or https), or several: tried in turn when one fails. */
  url: string | string[];
  /** A daemon token (`switchboard token --role daemon ...`). */
  token: string;
  /** Most handlers running at once. Default 1. */
  capacity?: number;
  /**
   * Request kind -> handler. `'*'` handles any kind without its own handler; a kind
   * with neither fails with `unknown_kind`.
   */
  handlers: Record<string, Handler>;
  /** Heartbeat polling period while no socket is up. Default 1000 ms. */
  pollIntervalMs?: number;
  /** Failed socket attempts in a row before polling starts. Default 2. */
  socketFailuresBeforePolling?: number;
  /** Reconnect backoff. Default 250 ms doubling to 10 s, with full jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** How long `close()` waits for running handlers and their reports. Default 10 s. */
  closeTimeoutMs?: number;
  /**
   * How long one HTTP call (heartbeat, result, renew) may take before it is given up and
   * retried like a network error, so a half-open connection cannot stall polling or a
   * report. Default 10 s.
   */
  httpTimeoutMs?: number;
  /**
   * Most output chunks of one attempt sent and not yet acknowledged by the hub
   * (`ctx.output()`); a chunk beyond them waits until earlier ones are stored. Default 64.
   */
  outputWindow?: number;
}

/** The options with every default filled in, and the URLs without trailing slashes. */
export type Settings = Required<Omit<DaemonOptions, 'url' | 'backoff'>> & {
  urls: string[];
  backoff: { initialMs: number; maxMs: number };
};

export function settings(options: DaemonOptions): Settings {
  const urls = (Array.isArray(options.url) ? options.url : [options.url]).map((u) =>
    u.replace(/\/+$/, ''),
  );
  if (urls.length === 0) throw new TypeError('connectDaemon: url is required');
  const window = options.outputWindow;
  if (window !== undefined && !(Number.isInteger(window) && window >= 1 && window <= 1000)) {
    throw new TypeError('connectDaemon: outputWindow must be a whole number from 1 to 1000');
  }
  return {
    urls,
    token: options.token,
    capacity: options.capacity ?? 1,
    handlers: options.handlers,
    pollIntervalMs: options.pollIntervalMs ?? 1_000,
    socketFailuresBeforePolling: options.socketFailuresBeforePolling ?? 2,
    backoff: {
      initialMs: options.backoff?.initialMs ?? 250,
      maxMs: options.backoff?.maxMs ?? 10_000,
    },
    closeTimeoutMs: options.closeTimeoutMs ?? 10_000,
    httpTimeoutMs: options.httpTimeoutMs ?? 10_000,
    outputWindow: options.outputWindow ?? 64,
  };
}
