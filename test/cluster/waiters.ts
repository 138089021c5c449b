/**
 * The chaos suite's client side: what a client waits for (a tracked request) and a
 * client websocket that waits for many of them across node failures.
 */
import { WebSocket } from 'ws';
import type { ChaosCluster } from './harness.js';

export const TERMINAL = new Set(['completed', 'failed', 'timeout', 'cancelled']);

export interface Tracked {
  id: string;
  runtime: string;
  maxAttempts: number;
  createdAt: number;
  waiter: 'poll' | 'socket';
  /** Chunks of output its handler streams before the result (0: none). */
  stream: number;
  /** The create's `ordering_key`, or null. */
  orderingKey: string | null;
  seenTerminal?: { status: string; at: number };
  /** The node a socket waiter last subscribed on, for the failure message. */
  via?: string;
  /** What a socket waiter last heard of it (snapshot or update), for the failure message. */
  lastHeard?: { status: string; frame: string; at: number };
}

/**
 * A client websocket that waits for requests to end: reconnects (to any live node) when
 * its socket drops and resubscribes everything it still waits for.
 */
export class SocketWaiter {
  readonly #waiting = new Map<string, Tracked>();
  #ws: WebSocket | null = null;
  #closed = false;
  #node = '';

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly token: string,
  ) {
    this.#connect();
  }

  watch(t: Tracked): void {
    this.#waiting.set(t.id, t);
    t.via = this.#node;
    this.#send({ type: 'subscribe', runtime: t.runtime, requests: [t.id] });
  }

  close(): void {
    this.#closed = true;
    this.#ws?.terminate();
  }

  #send(frame: unknown): void {
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(frame));
  }

  #connect(): void {
    if (this.#closed) return;
    const node = this.cluster.liveNode();
    this.#node = `hub-${node.index}`;
    const url = node.url.replace('http', 'ws');
    const ws = new WebSocket(`${url}/v1/ws?access_token=${this.token}`);
    this.#ws = ws;
    ws.on('open', () => {
      const byRuntime = new Map<string, string[]>();
      for (const t of this.#waiting.values()) {
        t.via = this.#node;
        byRuntime.set(t.runtime, [...(byRuntime.get(t.runtime) ?? []), t.id]);
      }
      for (const [runtime, ids] of byRuntime) {
        for (let i = 0; i < ids.length; i += 500) {
          this.#send({ type: 'subscribe', runtime, requests: ids.slice(i, i + 500) });
        }
      }
    });
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString()) as {
        type: string;
        runtime?: string;
        request?: { id: string; status: string; runtime_id: string };
        requests?: { id: string; status: string; runtime_id: string }[] | string[];
        code?: string;
      };
      if (f.type === 'error' && f.runtime && Array.isArray(f.requests)) {
        // A subscribe the node could not serve (store unreachable, or its reads for this
        // socket backed up): ask again shortly.
        const again = (f.requests as string[]).filter((id) => this.#waiting.has(id));
        const runtime = f.runtime;
        if (again.length > 0) {
          setTimeout(
            () => this.#send({ type: 'subscribe', runtime, requests: again }),
            200 + Math.random() * 800,
          );
        }
        return;
      }
      const seen =
        f.type === 'snapshot'
          ? ((f.requests ?? []) as { id: string; status: string; runtime_id: string }[])
          : f.type === 'request' && f.request
            ? [f.request]
            : [];
      for (const r of seen) {
        const t = this.#waiting.get(r.id);
        if (!t) continue;
        t.lastHeard = { status: r.status, frame: f.type, at: Date.now() };
        if (!TERMINAL.has(r.status)) continue;
        t.seenTerminal = { status: r.status, at: Date.now() };
        this.#waiting.delete(r.id);
        this.#send({ type: 'unsubscribe', runtime: r.runtime_id, requests: [r.id] });
      }
    });
    ws.on('error', () => {});
    ws.on('close', () => {
      if (this.#ws === ws && !this.#closed)
        setTimeout(() => this.#connect(), 100 + Math.random() * 200);
    });
  }
}
