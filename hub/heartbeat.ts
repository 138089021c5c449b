/**
 * The HTTP heartbeat (POST /v1/daemon/heartbeat), the fallback for a daemon without a
 * socket: liveness first (it never waits on work), then its leases, then claims for the
 * capacity it declares. A draining node records liveness and renews, but claims nothing.
 */
import type { HeartbeatBody, HeartbeatResponse } from '../protocol/index.js';
import { type RequestRecord, type RuntimeRef, toDaemonRequest } from '../stores/domain.js';
import { isStoreError } from '../stores/errors.js';
import type { RequestStore } from '../stores/store.js';
import type { HubMetrics } from './metrics.js';
import { type HubSettings, presenceTtl } from './settings.js';
import { claimSpan, endSpan, wireTrace } from './tracing.js';

export interface HeartbeatDeps {
  store: RequestStore;
  metrics: HubMetrics;
  settings: HubSettings;
  draining: () => boolean;
}

type Lease = HeartbeatResponse['leases'][number];

export async function httpHeartbeat(
  deps: HeartbeatDeps,
  rt: RuntimeRef,
  daemonSub: string,
  body: HeartbeatBody,
): Promise<HeartbeatResponse> {
  const { store, settings } = deps;
  await store.recordHeartbeat(rt, presenceTtl(settings));
  const leases = await Promise.all(body.leases.map((l) => renewLease(store, rt, l.id, l.epoch)));
  const claimed =
    body.max > 0 && !deps.draining()
      ? await store.claim(rt, {
          connectionId: `http:${daemonSub}`,
          nodeId: settings.nodeId,
          max: body.max,
        })
      : [];
  deps.metrics.claimed('heartbeat', claimed);
  return {
    requests: claimed.map((r) => heartbeatRequest(r, settings.nodeId, daemonSub)),
    leases,
    heartbeat_interval_ms: settings.heartbeatIntervalMs,
  };
}

/** A claimed request as the heartbeat answers it, under its claim span. */
function heartbeatRequest(r: RequestRecord, nodeId: string, daemonSub: string) {
  const span = claimSpan(r, 'heartbeat', nodeId, `http:${daemonSub}`);
  const request = toDaemonRequest(r, wireTrace(span));
  endSpan(span);
  return request;
}

/** One lease: renewed, or refused (lost, gone); a store outage fails the whole heartbeat. */
async function renewLease(
  store: RequestStore,
  rt: RuntimeRef,
  id: string,
  epoch: number,
): Promise<Lease> {
  try {
    const r = await store.renew(rt, id, epoch);
    const at = r.lease_expires_at === null ? null : new Date(r.lease_expires_at).toISOString();
    return { id, epoch, ok: true, lease_expires_at: at };
  } catch (err) {
    if (isStoreError(err, 'store_unavailable')) throw err;
    return { id, epoch, ok: false, lease_expires_at: null };
  }
}
