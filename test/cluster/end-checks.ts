/**
 * The chaos suite's end checks, run once every node is healthy again: nothing that a
 * fault left behind may keep a waiter hanging. Every long-poll on every node answers
 * within its `wait_ms` (plus a margin), and every client-websocket `subscribe` on every
 * node is answered with a snapshot within a bound. Each check is bounded and reports
 * what hung, where: node, runtime, request.
 */
import { WebSocket } from 'ws';
import type { ChaosCluster, NodeProcess } from './harness.js';

/** A runtime no daemon serves: its requests stay pending, so a long-poll must time out. */
export const IDLE_RUNTIME = 'rt-idle';
const WAIT_MS = 1_000;
/** Scheduling noise on a loaded machine, not a hub's own waiting. */
const MARGIN_MS = 1_500;
const SNAPSHOT_BOUND_MS = 3_000;
const READY_BOUND_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) until every node answers /readyz 200; returns the nodes that did not. */
export async function awaitAllReady(cluster: ChaosCluster): Promise<string[]> {
  const deadline = Date.now() + READY_BOUND_MS;
  let notReady = cluster.nodes;
  while (Date.now() < deadline) {
    const ready = await Promise.all(notReady.map((n) => n.ready()));
    notReady = notReady.filter((_, i) => !ready[i]);
    if (notReady.length === 0) return [];
    await sleep(200);
  }
  return notReady.map((n) => `hub-${n.index}: /readyz not 200 within ${READY_BOUND_MS} ms`);
}

/**
 * `GET .../requests/:id?wait_ms=1000` for each `{runtime, id}` on every node, all at
 * once. A terminal request answers at once and a live one after wait_ms; anything
 * slower than wait_ms + margin is a hang. Returns one line per failure.
 */
export async function checkLongPolls(
  cluster: ChaosCluster,
  token: string,
  targets: { runtime: string; id: string; expect?: string }[],
): Promise<string[]> {
  const bound = WAIT_MS + MARGIN_MS;
  const one = async (node: NodeProcess, t: { runtime: string; id: string; expect?: string }) => {
    const path = `/v1/runtimes/${t.runtime}/requests/${t.id}?wait_ms=${WAIT_MS}`;
    const what = `hub-${node.index}: long-poll runtime ${t.runtime} request ${t.id} (wait_ms ${WAIT_MS})`;
    const started = Date.now();
    try {
      const res = await fetch(`${node.url}${path}`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(bound),
      });
      const body = (await res.json()) as { status?: string };
      const took = Date.now() - started;
      if (!res.ok)
        return `${what}: answered ${res.status} ${JSON.stringify(body)} after ${took} ms`;
      if (t.expect && body.status !== t.expect) {
        return `${what}: status ${body.status}, expected ${t.expect}`;
      }
      return null;
    } catch (err) {
      const took = Date.now() - started;
      const hung = (err as Error).name === 'TimeoutError';
      return hung
        ? `${what}: HUNG, no answer within ${bound} ms`
        : `${what}: failed after ${took} ms: ${(err as Error).message}`;
    }
  };
  const results = await Promise.all(
    cluster.nodes.flatMap((node) => targets.map((t) => one(node, t))),
  );
  return results.filter((r): r is string => r !== null);
}

/**
 * On every node, a fresh client websocket subscribes to each runtime (the whole
 * runtime); each subscribe must be answered with its snapshot within the bound.
 * Returns one line per failure.
 */
export async function checkSubscribes(
  cluster: ChaosCluster,
  token: string,
  runtimes: string[],
): Promise<string[]> {
  const perNode = await Promise.all(
    cluster.nodes.map((node) => subscribeAll(node, token, runtimes)),
  );
  return perNode.flat();
}

async function subscribeAll(node: NodeProcess, token: string, runtimes: string[]) {
  const where = `hub-${node.index}: client websocket`;
  const ws = new WebSocket(`${node.url.replace('http', 'ws')}/v1/ws?access_token=${token}`);
  ws.on('error', () => {});
  try {
    const opened = await Promise.race([
      new Promise<boolean>((resolve) => {
        ws.once('open', () => resolve(true));
        ws.once('close', () => resolve(false));
      }),
      sleep(SNAPSHOT_BOUND_MS).then(() => false),
    ]);
    if (!opened) return [`${where}: did not open within ${SNAPSHOT_BOUND_MS} ms`];
    const answered = new Map<string, string>();
    const errors: string[] = [];
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as { type: string; runtime?: string; code?: string };
      if (f.type === 'snapshot' && f.runtime) answered.set(f.runtime, 'snapshot');
      if (f.type === 'error') errors.push(`${where}: error frame ${JSON.stringify(f)}`);
    });
    const sentAt = Date.now();
    for (const runtime of runtimes) ws.send(JSON.stringify({ type: 'subscribe', runtime }));
    const deadline = sentAt + SNAPSHOT_BOUND_MS;
    while (answered.size < runtimes.length && Date.now() < deadline) await sleep(20);
    const hung = runtimes
      .filter((r) => !answered.has(r))
      .map(
        (r) =>
          `${where}: subscribe to runtime ${r} HUNG, no snapshot within ${SNAPSHOT_BOUND_MS} ms`,
      );
    return [...hung, ...errors];
  } finally {
    ws.terminate();
  }
}

/** Creates a request for the runtime no daemon serves (retrying across nodes); its id. */
export async function createIdle(c: ChaosCluster, token: string): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`${c.liveNode().url}/v1/runtimes/${IDLE_RUNTIME}/requests`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'idempotency-key': 'chaos-idle',
      },
      // Pending for the whole run: a long-poll on it must wait out its wait_ms.
      body: JSON.stringify({ kind: 'job', payload: null, pending_timeout_ms: 3_600_000 }),
      signal: AbortSignal.timeout(5_000),
    }).catch(() => null);
    if (res?.status === 201 || res?.status === 200)
      return ((await res.json()) as { id: string }).id;
    await res?.body?.cancel();
    await sleep(100);
  }
  throw new Error(`could not create a request for ${IDLE_RUNTIME} on any node`);
}
