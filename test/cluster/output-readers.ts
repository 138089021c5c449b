/**
 * The chaos suite's output readers: clients that reassemble a request's output while
 * they wait for it to end, across node failures. One client websocket follows many
 * requests (`subscribe` with `output: true`) and, after every drop, resubscribes on any
 * live node with `after` = the last offset it has; an SSE reader per request reconnects
 * with `Last-Event-ID`. Both keep every chunk in the order it came, repeats and all, so
 * the end checks see exactly what a client would have reassembled.
 */
import { WebSocket } from 'ws';
import type { Chunk } from '../helpers/output.js';
import type { ChaosCluster } from './harness.js';
import { TERMINAL } from './waiters.js';

export interface Followed {
  id: string;
  runtime: string;
  by: 'socket' | 'sse';
  got: Chunk[];
  /** The terminal status, once the reader saw it. */
  ended?: string;
  /** Connections after the first (resubscribes, SSE reconnects). */
  reconnects: number;
}

/** The last offset a reader has: where it resumes. */
const lastOffset = (f: Followed) => f.got.at(-1)?.offset ?? 0;

/** A client websocket following the output of many requests until each ends. */
export class OutputSocket {
  readonly #following = new Map<string, Followed>();
  #ws: WebSocket | null = null;
  #closed = false;

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly token: string,
  ) {
    this.#connect(false);
  }

  follow(f: Followed): void {
    this.#following.set(f.id, f);
    this.#subscribe(f.runtime, [f]);
  }

  close(): void {
    this.#closed = true;
    this.#ws?.terminate();
  }

  #subscribe(runtime: string, fs: Followed[]): void {
    if (this.#ws?.readyState !== WebSocket.OPEN) return; // the next open subscribes them
    const after = Object.fromEntries(fs.map((f) => [f.id, lastOffset(f)]));
    this.#ws.send(
      JSON.stringify({
        type: 'subscribe',
        runtime,
        requests: fs.map((f) => f.id),
        output: true,
        after,
      }),
    );
  }

  #connect(again: boolean): void {
    if (this.#closed) return;
    const node = this.cluster.liveNode();
    const ws = new WebSocket(`${node.url.replace('http', 'ws')}/v1/ws?access_token=${this.token}`);
    this.#ws = ws;
    ws.on('open', () => {
      const byRuntime = new Map<string, Followed[]>();
      for (const f of this.#following.values()) {
        if (again) f.reconnects += 1;
        byRuntime.set(f.runtime, [...(byRuntime.get(f.runtime) ?? []), f]);
      }
      for (const [runtime, fs] of byRuntime) this.#subscribe(runtime, fs);
    });
    ws.on('message', (raw) => this.#onFrame(JSON.parse(raw.toString())));
    ws.on('error', () => {});
    ws.on('close', () => {
      if (this.#ws === ws && !this.#closed) {
        setTimeout(() => this.#connect(true), 100 + Math.random() * 200);
      }
    });
  }

  #onFrame(f: {
    type: string;
    id?: string;
    epoch?: number;
    offset?: number;
    data?: unknown;
    runtime?: string;
    request?: { id: string; status: string };
    requests?: { id: string; status: string }[] | string[];
  }): void {
    if (f.type === 'output') {
      const followed = this.#following.get(f.id as string);
      followed?.got.push({ offset: f.offset as number, epoch: f.epoch as number, data: f.data });
      return;
    }
    if (f.type === 'error' && f.runtime && Array.isArray(f.requests)) {
      // The node could not serve the subscribe (store unreachable): ask again shortly.
      const runtime = f.runtime;
      const again = (f.requests as string[]).flatMap((id) => this.#following.get(id) ?? []);
      if (again.length === 0) return;
      setTimeout(
        () => {
          const still = again.filter((x) => !x.ended);
          if (still.length === 0) return;
          // Subscribed again over what the failed frame left: the hub catches the
          // followers up from `after` before the snapshot.
          this.#subscribe(runtime, still);
        },
        200 + Math.random() * 800,
      );
      return;
    }
    const seen =
      f.type === 'snapshot'
        ? ((f.requests ?? []) as { id: string; status: string }[])
        : f.type === 'request' && f.request
          ? [f.request]
          : [];
    for (const r of seen) {
      const followed = this.#following.get(r.id);
      if (!followed || !TERMINAL.has(r.status)) continue;
      // The hub sends every chunk before the state that says there is no more.
      followed.ended = r.status;
      this.#following.delete(r.id);
      this.#ws?.send(
        JSON.stringify({ type: 'unsubscribe', runtime: followed.runtime, requests: [r.id] }),
      );
    }
  }
}

/** An SSE stream silent this long (the hub sends a comment every 15 s) is given up. */
const SSE_SILENCE_MS = 20_000;

/**
 * Follows one request's `GET .../events` until its terminal state, reconnecting (to any
 * live node, with `Last-Event-ID`) whenever the stream breaks, ends early, or goes
 * silent; gives up when `stop` aborts.
 */
export async function followBySse(
  cluster: ChaosCluster,
  token: string,
  f: Followed,
  stop: AbortSignal,
): Promise<void> {
  for (let hop = 0; !f.ended && !stop.aborted; hop++) {
    if (hop > 0) {
      f.reconnects += 1;
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
    }
    const abort = new AbortController();
    const onStop = () => abort.abort();
    stop.addEventListener('abort', onStop);
    let silence = setTimeout(() => abort.abort(), SSE_SILENCE_MS);
    try {
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (f.got.length > 0) headers['last-event-id'] = String(lastOffset(f));
      const node = cluster.liveNode();
      const res = await fetch(`${node.url}/v1/runtimes/${f.runtime}/requests/${f.id}/events`, {
        headers,
        signal: abort.signal,
      });
      if (res.status !== 200 || !res.body) {
        await res.body?.cancel();
        continue;
      }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      while (!f.ended) {
        const { value, done } = await reader.read();
        if (done) break;
        clearTimeout(silence);
        silence = setTimeout(() => abort.abort(), SSE_SILENCE_MS);
        buffer += decoder.decode(value, { stream: true });
        for (let at = buffer.indexOf('\n\n'); at !== -1; at = buffer.indexOf('\n\n')) {
          onEvent(f, buffer.slice(0, at));
          buffer = buffer.slice(at + 2);
        }
      }
      await reader.cancel().catch(() => {});
    } catch {
      // The node went away, or the stream was given up: reconnect.
    } finally {
      clearTimeout(silence);
      stop.removeEventListener('abort', onStop);
      abort.abort();
    }
  }
}

function onEvent(f: Followed, block: string): void {
  const fields: Record<string, string> = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^ /, '');
    fields[name] = fields[name] === undefined ? value : `${fields[name]}\n${value}`;
  }
  if (fields.event === 'output') {
    const body = JSON.parse(fields.data as string) as { epoch: number; data: unknown };
    f.got.push({ offset: Number(fields.id), epoch: body.epoch, data: body.data });
  } else if (fields.event === 'state') {
    const status = (JSON.parse(fields.data as string) as { status: string }).status;
    if (TERMINAL.has(status)) f.ended = status;
  }
}
