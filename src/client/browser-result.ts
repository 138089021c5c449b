/**
 * The browser client's `result()`: waiting for one request to end. Socket events carry
 * it while the socket is up (with a plain read now and then, and whenever a snapshot
 * does not show the request: it may have ended before the subscription, or not exist);
 * long-polls (`GET .../requests/:id?wait_ms=`) carry it while the socket is not open.
 * Whichever sees the end first wins.
 */
import { Backoff } from '../../protocol/backoff.js';
import { FINAL_HTTP_STATUSES } from '../../protocol/codes.js';
import type { Request } from '../../protocol/index.js';
import { isTerminal as isTerminalStatus } from '../../protocol/status.js';
import { type Call, closedError, SwitchboardError } from './browser-http.js';
import type { Listener, SharedSocket } from './browser-socket.js';

const LONG_POLL_MS = 30_000;
/** How often `result()` reads over HTTP while it waits on an open socket (a safety net). */
const SOCKET_RECHECK_MS = 20_000;

const isTerminal = (r: Request | undefined): r is Request => !!r && isTerminalStatus(r.status);

export interface ResultDeps {
  socket: SharedSocket;
  call: Call;
  /** Aborts when the client is closed. */
  closing: AbortSignal;
}

export async function awaitResult(
  { socket, call, closing }: ResultDeps,
  runtime: string,
  id: string,
  path: string,
  opts: { timeoutMs?: number },
): Promise<Request> {
  const stop = new AbortController();
  let finish!: (outcome: Request | SwitchboardError) => void;
  const outcome = new Promise<Request | SwitchboardError>((resolve) => {
    finish = (o) => {
      if (stop.signal.aborted) return;
      stop.abort();
      resolve(o);
    };
  });
  const onFailure = (err: unknown) => {
    if (err instanceof SwitchboardError && FINAL_HTTP_STATUSES.has(err.status)) finish(err);
  };
  const readOnce = () =>
    call<Request>('GET', path, { signal: stop.signal }).then(
      (r) => isTerminal(r) && finish(r),
      onFailure,
    );
  const listener: Listener = {
    runtime,
    ids: new Set([id]),
    onEvent(event) {
      if (event.type === 'request' && event.request.id === id) {
        if (isTerminal(event.request)) finish(event.request);
      } else if (event.type === 'snapshot') {
        const found = event.requests.find((r) => r.id === id);
        if (isTerminal(found)) finish(found);
        else if (!found) void readOnce();
      } else if (event.type === 'error') {
        // The hub could not read something for this socket: ask over HTTP instead.
        void readOnce();
      }
    },
  };
  // While the socket is up, frames carry the result; a frame the hub could not send
  // (a read that failed on its side) would leave this waiting, so read now and then.
  const recheck = setInterval(() => void readOnce(), SOCKET_RECHECK_MS);
  const onClose = () => finish(closedError());
  closing.addEventListener('abort', onClose);
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  const timer =
    opts.timeoutMs === undefined
      ? undefined
      : setTimeout(
          () => finish(new SwitchboardError(0, 'timeout', `no result within ${opts.timeoutMs} ms`)),
          opts.timeoutMs,
        );
  socket.add(listener);
  try {
    void longPollWhileSocketIsDown();
    const o = await outcome;
    if (o instanceof SwitchboardError) throw o;
    return o;
  } finally {
    stop.abort();
    clearTimeout(timer);
    clearInterval(recheck);
    closing.removeEventListener('abort', onClose);
    socket.remove(listener);
  }

  async function longPollWhileSocketIsDown(): Promise<void> {
    const backoff = new Backoff(250, 10_000);
    while (!stop.signal.aborted) {
      if (socket.mode === 'open' || socket.mode === 'connecting') {
        await socket.changed(stop.signal);
        continue;
      }
      const waitMs = Math.floor(Math.min(LONG_POLL_MS, deadline - Date.now()));
      if (waitMs <= 0) return; // the timer settles it
      try {
        const r = await call<Request>('GET', `${path}?wait_ms=${waitMs}`, { signal: stop.signal });
        backoff.reset();
        if (isTerminal(r)) finish(r);
      } catch (err) {
        onFailure(err);
        await Promise.race([sleep(backoff.next(), stop.signal), socket.changed(stop.signal)]);
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}
