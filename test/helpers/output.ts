/**
 * Output-stream helpers for tests: a raw daemon writer (frames, a window of unacked
 * chunks, resend on a new socket), and three readers that reassemble a request's
 * output: by client websocket (with cuts and resubscribes), by SSE (with Last-Event-ID
 * reconnects) and by HTTP paging. Each reader returns the chunks it got, in the order
 * it got them, so a test can assert no gap, no repeat, in order.
 */
import { api, FrameSocket } from './node.js';

export interface Chunk {
  offset: number;
  epoch: number;
  data: unknown;
}

type Node = { url: string };

/** Writes chunks `from..to` (seq = n, data `data(n)`) and waits until the hub stored them all. */
export async function emitOutput(
  daemon: FrameSocket,
  id: string,
  epoch: number,
  from: number,
  to: number,
  data: (seq: number) => unknown,
): Promise<void> {
  for (let seq = from; seq <= to; seq++) {
    daemon.send({ type: 'output', id, epoch, seq, data: data(seq) });
  }
  for (;;) {
    const f = await daemon.next(
      (x) => (x.type === 'output_ack' || x.type === 'nack') && x.id === id,
    );
    if (f.type === 'nack') throw new Error(`output refused: ${JSON.stringify(f)}`);
    if ((f.seq as number) >= to) return;
  }
}

/**
 * Streams `count` chunks `data(seq)` for a claimed request over daemon sockets, keeping
 * at most `window` unacknowledged. `reconnectAt`: after that many acks, drop the socket
 * and go on over a fresh one to `next` (chunks not acked are sent again).
 */
export async function streamFromDaemon(opts: {
  socket: FrameSocket;
  id: string;
  epoch: number;
  count: number;
  data: (seq: number) => unknown;
  window?: number;
  reconnect?: { afterAcks: number; open: () => Promise<FrameSocket> };
}): Promise<{ socket: FrameSocket; sent: number }> {
  // Acks are cumulative and may cover several frames: one answer per store batch.
  const window = opts.window ?? 128;
  let socket = opts.socket;
  let acked = 0;
  let sent = 0;
  let answers = 0;
  let reconnected = false;
  const send = (seq: number) => {
    socket.send({ type: 'output', id: opts.id, epoch: opts.epoch, seq, data: opts.data(seq) });
  };
  while (acked < opts.count) {
    while (sent < opts.count && sent - acked < window) send(++sent);
    const f = await socket.next(
      (x) =>
        (x.type === 'output_ack' || x.type === 'nack') &&
        x.id === opts.id &&
        x.epoch === opts.epoch,
      20_000,
    );
    answers += 1;
    if (f.type === 'nack') {
      if (!f.retry) throw new Error(`output refused: ${JSON.stringify(f)}`);
      sent = acked; // resend from the first unacked chunk
      continue;
    }
    acked = Math.max(acked, f.seq as number);
    if (opts.reconnect && !reconnected && answers >= opts.reconnect.afterAcks) {
      reconnected = true;
      socket.ws.terminate();
      socket = await opts.reconnect.open();
      sent = acked; // the hub dedups any seq it already has
    }
  }
  return { socket, sent: opts.count };
}

/**
 * Reads a request's output by client websocket, resubscribing with `after` on the
 * nodes in `hops` in turn, each time after `cutEvery` chunks (the socket is cut
 * mid-stream), `cuts` times. Ends at the terminal state (a snapshot or `request` frame;
 * the hub sends all output before it).
 */
export async function readBySocket(
  nodes: Node[],
  token: string,
  runtime: string,
  id: string,
  cutEvery: number,
  cuts: number,
): Promise<Chunk[]> {
  const got: Chunk[] = [];
  for (let hop = 0; ; hop++) {
    const node = nodes[hop % nodes.length] as Node;
    const socket = await FrameSocket.client(node, token);
    const after = got.at(-1)?.offset ?? 0;
    socket.send({
      type: 'subscribe',
      runtime,
      requests: [id],
      output: true,
      after: { [id]: after },
    });
    let inHop = 0;
    let terminal = false;
    while (!terminal && !(hop < cuts && inHop >= cutEvery)) {
      const f = await socket.next(
        (x) =>
          x.type === 'output' ||
          x.type === 'snapshot' ||
          x.type === 'error' ||
          (x.type === 'request' && x.request.id === id),
        30_000,
      );
      if (f.type === 'error') throw new Error(`subscribe refused: ${JSON.stringify(f)}`);
      if (f.type === 'output') {
        got.push({ offset: f.offset, epoch: f.epoch, data: f.data });
        inHop += 1;
      } else {
        const status = f.type === 'snapshot' ? f.requests[0]?.status : f.request.status;
        terminal = isTerminal(status);
      }
    }
    socket.ws.terminate();
    if (terminal) return got;
  }
}

function isTerminal(status: unknown): boolean {
  return ['completed', 'failed', 'timeout', 'cancelled'].includes(status as string);
}

/** Reads by SSE, reconnecting with Last-Event-ID after every `cutEvery` output events. */
export async function readBySse(
  nodes: Node[],
  token: string,
  runtime: string,
  id: string,
  cutEvery: number,
  cuts: number,
): Promise<{ chunks: Chunk[]; states: string[] }> {
  const chunks: Chunk[] = [];
  const states: string[] = [];
  for (let hop = 0; ; hop++) {
    const node = nodes[hop % nodes.length] as Node;
    const abort = new AbortController();
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    const last = chunks.at(-1)?.offset;
    if (last !== undefined) headers['last-event-id'] = String(last);
    const res = await fetch(`${node.url}/v1/runtimes/${runtime}/requests/${id}/events`, {
      headers,
      signal: abort.signal,
    });
    if (res.status !== 200) throw new Error(`events answered ${res.status}`);
    if (!res.headers.get('content-type')?.startsWith('text/event-stream')) {
      throw new Error(`events content-type ${res.headers.get('content-type')}`);
    }
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let inHop = 0;
    let ended = false;
    let cut = false;
    while (!ended && !cut) {
      const { value, done } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      buffer += decoder.decode(value, { stream: true });
      let at = buffer.indexOf('\n\n');
      while (at !== -1) {
        const block = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        at = buffer.indexOf('\n\n');
        const fields = sseFields(block);
        if (fields.event === 'output') {
          const body = JSON.parse(fields.data as string);
          chunks.push({ offset: Number(fields.id), epoch: body.epoch, data: body.data });
          inHop += 1;
          if (hop < cuts && inHop >= cutEvery) {
            cut = true;
            break;
          }
        } else if (fields.event === 'state') {
          states.push(JSON.parse(fields.data as string).status);
        }
      }
    }
    abort.abort();
    await reader.cancel().catch(() => {});
    if (ended) {
      if (isTerminal(states.at(-1))) return { chunks, states };
      throw new Error('the event stream ended before the terminal state');
    }
  }
}

/** Reads by HTTP paging until `done`. */
export async function readByPages(
  node: Node,
  token: string,
  runtime: string,
  id: string,
  limit = 333,
): Promise<Chunk[]> {
  const got: Chunk[] = [];
  let after = 0;
  for (;;) {
    const page = await api(
      node,
      'GET',
      `/v1/runtimes/${runtime}/requests/${id}/output?after=${after}&limit=${limit}`,
      { token },
    );
    if (page.status !== 200) throw new Error(`output page answered ${page.status}`);
    got.push(...(page.body.chunks as Chunk[]));
    after = page.body.next_after;
    if (page.body.done) return got;
    if (page.body.chunks.length === 0) await new Promise((r) => setTimeout(r, 20));
  }
}

/** The fields of one server-sent event block (`event`, `id`, `data` joined by newlines). */
export function sseFields(block: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^ /, '');
    fields[name] = fields[name] === undefined ? value : `${fields[name]}\n${value}`;
  }
  return fields;
}
