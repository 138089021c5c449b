/**
 * What the socket handlers need of the hub. The handlers depend on this interface and
 * the Hub implements it, so hub.ts can attach sockets without an import cycle.
 */
import type { Logger } from 'pino';
import type { TraceContext } from '../protocol/index.js';
import type { RequestRecord, RuntimeRef } from '../stores/domain.js';
import type { Outcome, RequestStore } from '../stores/store.js';
import type { DaemonConnection } from './daemon-conn.js';
import type { Relay } from './relay.js';
import type { HubSettings } from './settings.js';

export interface SocketHost {
  readonly store: RequestStore;
  readonly relay: Relay;
  readonly settings: HubSettings;
  readonly logger: Logger;
  daemonOpened(conn: DaemonConnection): void;
  daemonReady(conn: DaemonConnection): void;
  daemonClosed(conn: DaemonConnection): void;
  clientOpened(): void;
  clientClosed(): void;
  renew(rt: RuntimeRef, id: string, epoch: number): Promise<RequestRecord>;
  /**
   * Stores a socket's result, claiming the slot it frees in the same call. Resolves to
   * the function to run once the ack is out: it frees the slot and pushes what came.
   */
  reportFromSocket(
    conn: DaemonConnection,
    id: string,
    epoch: number,
    outcome: Outcome,
    /** The result's trace context (the handler span's): the report span's parent. */
    trace?: TraceContext,
  ): Promise<() => void>;
  /** The socket's report of `id` at `epoch` is refused for good: its slot is free. */
  settled(conn: DaemonConnection, id: string, epoch: number): void;
}
