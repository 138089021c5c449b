/**
 * Ordering keys across three nodes on one Redis: 3,000 requests over 30 keys plus 1,000
 * without a key, created in batches on A, B and C in turn, handled by daemons of
 * capacity 8 on B and C. The daemons' logs show, per key, every start after the end of
 * the one before it and in creation order (never two of a key at once), and the keyless
 * ones all finish while the first key's head is stalled by a slow handler.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDaemon, type Daemon } from '../../src/client/daemon.js';
import type { SwitchboardNode } from '../../src/node.js';
import { api, clientToken, daemonToken, startNodesOn } from '../helpers/node.js';
import { RedisServer } from '../helpers/redis.js';

const KEYS = 30;
const PER_KEY = 100;
const KEYLESS = 1_000;
const TOTAL = KEYS * PER_KEY + KEYLESS;
const STALLED = 'key-0';

interface Item {
  kind: string;
  payload: { key: string | null; n: number };
  ordering_key?: string;
}

/** One line of a daemon's log: a handler started or ended, numbered in one order. */
interface LogLine {
  at: number;
  event: 'start' | 'end';
  key: string | null;
  n: number;
  node: string;
}

/** Every fourth item keyless, the others over the keys in turn: 4,000 items. */
function items(): Item[] {
  const out: Item[] = [];
  let keyed = 0;
  let keyless = 0;
  for (let i = 0; i < TOTAL; i++) {
    if (i % 4 === 3) {
      out.push({ kind: 'work', payload: { key: null, n: keyless++ } });
    } else {
      const key = `key-${keyed % KEYS}`;
      out.push({ kind: 'work', payload: { key, n: Math.floor(keyed / KEYS) }, ordering_key: key });
      keyed++;
    }
  }
  return out;
}

describe('ordering keys across three nodes', () => {
  let server: RedisServer;
  let nodes: SwitchboardNode[];
  const daemons: Daemon[] = [];

  beforeAll(async () => {
    server = await RedisServer.start();
    nodes = await startNodesOn(server.url, 3);
  });
  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.close()));
    await Promise.all((nodes ?? []).map((n) => n.kill()));
    await server?.close();
  });

  it('runs each key one at a time in creation order; keyless requests pass a stalled key', async () => {
    const [a, b, c] = nodes as [SwitchboardNode, SwitchboardNode, SwitchboardNode];
    const started = performance.now();
    const log: LogLine[] = [];
    let at = 0;
    const running = new Map<string, number>();
    let maxPerKey = 0;

    let keylessDone = 0;
    let releaseStalled!: () => void;
    const stalled = new Promise<void>((resolve) => {
      releaseStalled = resolve;
    });
    /** What the log held when the last keyless request was reported. */
    let atRelease: LogLine[] | null = null;
    let accepted = 0;
    let allDone!: () => void;
    const finished = new Promise<void>((resolve) => {
      allDone = resolve;
    });

    /** Ids of the keyless requests a handler has started (a report follows its handler). */
    const keylessIds = new Set<string>();
    const token = await daemonToken('laptop');
    for (const node of [b, c]) {
      const name = node === b ? 'b' : 'c';
      const daemon = connectDaemon({
        url: node.url,
        token,
        capacity: 8,
        closeTimeoutMs: 2_000,
        handlers: {
          work: async (payload, ctx) => {
            const { key, n } = payload as { key: string | null; n: number };
            if (key === null) keylessIds.add(ctx.id);
            log.push({ at: at++, event: 'start', key, n, node: name });
            if (key !== null) {
              const now = (running.get(key) ?? 0) + 1;
              running.set(key, now);
              maxPerKey = Math.max(maxPerKey, now);
            }
            // The stalled key's head holds its slot until every keyless request is done.
            if (key === STALLED && n === 0) await stalled;
            else await new Promise<void>((resolve) => setImmediate(resolve));
            if (key !== null) running.set(key, (running.get(key) ?? 1) - 1);
            log.push({ at: at++, event: 'end', key, n, node: name });
            return { key, n };
          },
        },
      });
      daemon.on('reported', (r) => {
        if (!r.accepted || r.status !== 'completed') return;
        accepted++;
        if (accepted === TOTAL) allDone();
      });
      daemons.push(daemon);
    }
    // Keyless completions, seen on either daemon's report (the request id tells keyless).
    for (const daemon of daemons) {
      daemon.on('reported', (r) => {
        if (!r.accepted || !keylessIds.has(r.id)) return;
        keylessDone++;
        if (keylessDone === KEYLESS) {
          atRelease = [...log];
          releaseStalled();
        }
      });
    }

    const client = await clientToken();
    const all = items();
    const created: { id: string; ordering_key: string | null }[] = [];
    const creators = [a, b, c];
    for (let i = 0; i < all.length; i += 500) {
      const node = creators[(i / 500) % creators.length] as SwitchboardNode;
      const res = await api(node, 'POST', '/v1/runtimes/laptop/requests/batch', {
        token: client,
        body: { requests: all.slice(i, i + 500) },
      });
      expect(res.status).toBe(201);
      created.push(...(res.body.requests as { id: string; ordering_key: string | null }[]));
    }
    expect(created).toHaveLength(TOTAL);
    expect(created.filter((r) => r.ordering_key === null)).toHaveLength(KEYLESS);

    await finished;
    const seconds = (performance.now() - started) / 1000;

    // Keyless requests all finished while the stalled head still ran, nothing behind it.
    expect(atRelease).not.toBeNull();
    const before = atRelease as unknown as LogLine[];
    const stalledLines = before.filter((l) => l.key === STALLED);
    expect(stalledLines).toEqual([expect.objectContaining({ event: 'start', n: 0 })]);
    expect(before.filter((l) => l.key === null && l.event === 'end')).toHaveLength(KEYLESS);

    // Per key: start n, end n, start n+1, ... in creation order, each exactly once.
    expect(maxPerKey).toBe(1);
    for (let k = 0; k < KEYS; k++) {
      const key = `key-${k}`;
      const lines = log.filter((l) => l.key === key).map((l) => `${l.event} ${l.n}`);
      const want = Array.from({ length: PER_KEY }, (_, n) => [`start ${n}`, `end ${n}`]).flat();
      expect(lines).toEqual(want);
    }
    // Both daemons (on B and C) did keyed work: the lines crossed nodes.
    const keyedOn = new Set(log.filter((l) => l.key !== null).map((l) => l.node));
    expect(keyedOn).toEqual(new Set(['b', 'c']));

    // The runtime is drained and its lines are gone; ?ordering_key= lists an empty line.
    const info = await api(a, 'GET', '/v1/runtimes/laptop', { token: client });
    expect(info.body).toMatchObject({ pending: 0, running: 0 });
    const line = await api(c, 'GET', `/v1/runtimes/laptop/requests?ordering_key=${STALLED}`, {
      token: client,
    });
    expect(line.body).toEqual({ requests: [], next_cursor: null });
    console.log(
      `ordering-nodes: ${TOTAL} requests (${KEYS} keys x ${PER_KEY} + ${KEYLESS} keyless) in ${seconds.toFixed(1)} s; max running per key ${maxPerKey}`,
    );
  }, 120_000);
});
