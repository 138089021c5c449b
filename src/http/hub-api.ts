/**
 * What the HTTP layer needs of the hub. The hub's `Hub` class implements it
 * structurally; tests stub it over a MemoryStore.
 */

import type { RequestFollow } from '../../hub/request-follow.js';
import type {
  HeartbeatBody,
  HeartbeatResponse,
  TraceContext,
  WorkspaceStats,
} from '../../protocol/index.js';
import type { RequestRecord, RuntimeRef } from '../../stores/domain.js';
import type { Outcome, RequestStore } from '../../stores/store.js';

export interface HubApi {
  /** The store as the hub fronts it: transitions and store errors are counted there. */
  readonly store: RequestStore;
  /** True once the node is shutting down: every /v1 route answers 503 `draining`. */
  readonly draining: boolean;
  /** The record once terminal, or as it is after `waitMs`; null when it does not exist. */
  waitForTerminal(rt: RuntimeRef, id: string, waitMs: number): Promise<RequestRecord | null>;
  /** A request's states and output from offset `after`, to its end; null: no such request. */
  followRequest(rt: RuntimeRef, id: string, after: number): Promise<RequestFollow | null>;
  heartbeat(rt: RuntimeRef, daemonSub: string, body: HeartbeatBody): Promise<HeartbeatResponse>;
  report(
    rt: RuntimeRef,
    id: string,
    epoch: number,
    outcome: Outcome,
    trace?: TraceContext,
  ): Promise<RequestRecord>;
  renew(rt: RuntimeRef, id: string, epoch: number): Promise<RequestRecord>;
  /** The workspace's per-minute figures for the last 15 minutes, from every node (GET /v1/stats). */
  workspaceStats(workspace: string): Promise<WorkspaceStats>;
}
