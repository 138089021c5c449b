/**
 * Presence refreshes are spread over the heartbeat interval: with many idle daemon
 * sockets, no timer turn issues more than a slice of them, and every connection is
 * still refreshed each round, a slice's sockets of one runtime in one store call. Calls
 * are grouped by event-loop turn (a turn ends at the next setImmediate), so the check
 * counts work per tick, not time.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { stopAfterEach } from '../helpers/cleanup.js';
import { daemonToken, type FrameSocket, readyDaemon } from '../helpers/node.js';

const { defer, node } = stopAfterEach();

const SOCKETS = 120;

describe('presence refresh', () => {
  it('refreshes every connection each round, a slice per tick', async () => {
    const n = await node({ HEARTBEAT_INTERVAL_MS: '1000' });
    const calls: string[] = [];
    const turns: number[] = [];
    let open = false;
    let storeCalls = 0;
    const upsert = n.store.upsertConnections.bind(n.store);
    n.store.upsertConnections = (rt, conns, ttl) => {
      storeCalls++;
      calls.push(...conns.map((c) => c.connection_id));
      if (!open) {
        open = true;
        turns.push(0);
        setImmediate(() => {
          open = false;
        });
      }
      turns[turns.length - 1] = (turns[turns.length - 1] as number) + conns.length;
      return upsert(rt, conns, ttl);
    };

    const token = await daemonToken(`spread-${randomUUID().slice(0, 8)}`);
    const daemons: FrameSocket[] = [];
    for (let i = 0; i < SOCKETS; i += 20) {
      daemons.push(
        ...(await Promise.all(Array.from({ length: 20 }, () => readyDaemon(n, token, 1)))),
      );
    }
    for (const d of daemons) defer(() => d.close());
    // Each ready refreshes once on its own; wait for those, then watch the rounds.
    await expect.poll(() => calls.length, { timeout: 5000 }).toBeGreaterThanOrEqual(SOCKETS);
    calls.length = 0;
    turns.length = 0;
    storeCalls = 0;

    const ids = new Set(daemons.map((d) => d.frames[0]?.connection_id as string));
    await expect
      .poll(() => ids.size > 0 && [...ids].every((id) => calls.includes(id)), { timeout: 8000 })
      .toBe(true);
    const busiest = Math.max(...turns);
    expect(busiest, `per-turn refreshes ${JSON.stringify(turns)}`).toBeLessThanOrEqual(SOCKETS / 4);
    // All on one runtime: a slice's sockets go in one call, not one call each.
    expect(storeCalls).toBeLessThan(calls.length / 2);
    // Still every socket alive: the slices also carried the pings.
    expect(daemons.every((d) => d.ws.readyState === d.ws.OPEN)).toBe(true);
  });
});
