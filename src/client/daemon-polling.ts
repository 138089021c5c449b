/**
 * The daemon's polling mode, its work: while no socket can be had, a heartbeat every
 * `pollIntervalMs` (`POST /v1/daemon/heartbeat`) declares the free slots, renews every
 * lease held and brings back what it claimed. A failed heartbeat waits at least the
 * reconnect backoff and tries the next URL. Started and stopped only by the daemon's
 * `setMode()` (entering polling, leaving it); a round that was stopped ends by itself.
 */
import type { DaemonRequest } from '../../protocol/index.js';
import { type Connection, post } from './daemon-transport.js';
import type { Jobs } from './jobs.js';

export interface PollDeps {
  readonly conn: Connection;
  readonly jobs: Jobs;
  readonly capacity: number;
  readonly pollIntervalMs: number;
  /** Claims came in: declare the socket's capacity again (a socket may be up by now). */
  declareCapacity(): void;
  error(err: Error): void;
}

export function startPolling(deps: PollDeps): void {
  const { conn } = deps;
  const round = ++conn.pollRound;
  const tick = async () => {
    conn.pollTimer = null;
    if (conn.pollRound !== round) return;
    let waitMs = deps.pollIntervalMs;
    try {
      conn.beat = heartbeat(deps);
      await conn.beat;
    } catch (err) {
      deps.error(err as Error);
      conn.urlIndex++;
      waitMs = Math.max(waitMs, conn.backoff.peek());
    }
    if (conn.pollRound === round) conn.pollTimer = setTimeout(tick, waitMs);
  };
  void tick();
}

export function stopPolling(conn: Connection): void {
  conn.pollRound++;
  if (conn.pollTimer) clearTimeout(conn.pollTimer);
  conn.pollTimer = null;
}

async function heartbeat({ conn, jobs, capacity, declareCapacity }: PollDeps): Promise<void> {
  // Every attempt held, from receipt until its report settles (also one still waiting).
  const held = jobs.held();
  const sentAt = Date.now();
  const res = await post(conn, '/v1/daemon/heartbeat', {
    max: Math.max(0, capacity - jobs.size),
    leases: held.map((j) => ({ id: j.request.id, epoch: j.request.epoch })),
  });
  if (res.status !== 200) throw new Error(`heartbeat answered ${res.status}`);
  const body = res.body as {
    requests: DaemonRequest[];
    leases: { id: string; epoch: number; ok: boolean }[];
  };
  for (const lease of body.leases) {
    if (lease.ok) jobs.renewed(lease.id, lease.epoch, sentAt);
    else jobs.lose(lease.id, lease.epoch, 'lease_lost');
  }
  // Claims made by this heartbeat run here even if a socket came up meanwhile; a
  // socket that did declared its capacity before they existed: declare it again.
  for (const request of body.requests) jobs.receive(request, 0);
  if (body.requests.length > 0) declareCapacity();
}
