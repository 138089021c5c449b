/**
 * What the socket handlers need of the hub. The handlers depend on this interface and
 * the Hub implements it, so hub.ts can attach sockets without an import cycle.
 */
import type { Logger } from 'pino';
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
  report(rt: RuntimeRef, id: string, epoch: number, outcome: Outcome): Promise<RequestRecord>;
  /** The socket's report of `id` at `epoch` is settled (acked, or refused for good). */
  settled(conn: DaemonConnection, id: string, epoch: number): void;
}
