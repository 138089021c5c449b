/**
 * Presence refreshes are spread over the heartbeat interval: with many idle daemon
 * sockets, no timer turn issues more than a slice of them, and every connection is
 * still refreshed each round, a slice's sockets of one runtime in one store call. Calls
 * are grouped by event-loop turn (a turn ends at the next setImmediate), so the check
 * counts work per tick, not time.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sliceCuts } from '../../hub/presence-loop.js';
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

describe('sliceCuts', () => {
  const round = (sizes: number[]) =>
    sizes.flatMap((size, i) => Array.from({ length: size }, () => ({ tag: `rt-${i}` }))) as never[];

  it('covers the round in order, keeps small runtimes whole, and bounds every slice', () => {
    const sizes = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4];
    const conns = round(sizes) as { tag: string }[];
    const slices = 20;
    const cuts = sliceCuts(conns as never, slices);
    expect(cuts).toHaveLength(slices);
    expect(cuts.at(-1)).toBe(conns.length);
    expect(cuts).toEqual([...cuts].sort((a, b) => a - b));
    const share = Math.ceil(conns.length / slices);
    let from = 0;
    let splits = 0;
    for (const to of cuts) {
      expect(to - from).toBeLessThanOrEqual(2 * share + 1);
      const tag = conns[to]?.tag;
      const small = (sizes[Number(tag?.slice(3))] as number) <= share;
      if (to > 0 && to < conns.length && tag === conns[to - 1]?.tag && small) splits++;
      from = to;
    }
    // Runtimes of at most one share are never cut in two.
    expect(splits).toBe(0);
  });

  it('still spreads one big runtime over every slice', () => {
    const cuts = sliceCuts(round([400]), 40);
    const sizes = cuts.map((to, i) => to - (cuts[i - 1] ?? 0));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(20);
    // At most the last share is pulled onto the runtime's end.
    expect(sizes.filter((size) => size === 0).length).toBeLessThanOrEqual(1);
  });
});
