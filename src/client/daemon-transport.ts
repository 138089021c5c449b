/**
 * The daemon SDK's wire: the connection's state in one object, the websockets (open,
 * the watchdog, hello and the frames checked against the protocol), and HTTP calls with
 * a timeout. It decides nothing: what a hello, a frame or a lost socket means is the
 * daemon's (daemon.ts), which it is told through `SocketEvents`.
 *
 * Per-socket work runs in named handlers at module scope, with each socket's state in
 * one `Link`, instead of a set of closures per socket.
 */
import { WebSocket } from 'ws';
import { type Backoff, DaemonOutbound, type HelloFrame, parseFrame } from '../../protocol/index.js';
import { type HttpAnswer, parseRetryAfter, verdict } from './answers.js';
import type { RenewAnswer } from './jobs.js';

/** A connection that stayed up this long resets the backoff. */
const STABLE_MS = 5_000;
export const DEFAULT_LEASE_MS = 30_000;

/** Everything the daemon knows about its connection to the hub. */
export interface Connection {
  readonly urls: string[];
  readonly token: string;
  readonly httpTimeoutMs: number;
  /** Which URL sockets and HTTP calls go to (modulo the count): moved on past a failure. */
  urlIndex: number;
  /** Reconnects, and the heartbeat loop after a failure, wait by this. */
  readonly backoff: Backoff;
  /** The socket in use (the one that said hello last), while it is open. */
  ws: WebSocket | null;
  /** Every socket opened and not yet closed (the current one, one connecting, one draining). */
  readonly sockets: Set<WebSocket>;
  /** Generation of the newest socket opened; only its loss leads to a reconnect. */
  generation: number;
  /** Generation of the socket in use (-1: none yet). Jobs are on its books. */
  current: number;
  /** Sockets in a row that closed before their hello. */
  socketFailures: number;
  /** When the socket in use said hello. */
  upSince: number;
  /** The node's lease length (from hello). */
  leaseMs: number;
  /** The hub's frame and body limit (from hello; 1 MiB until one arrives). */
  maxPayloadBytes: number;
  /** The next socket attempt, while one is scheduled (modes reconnecting and polling). */
  reconnectTimer: NodeJS.Timeout | null;
  /** The next heartbeat, while polling. */
  pollTimer: NodeJS.Timeout | null;
  /** Bumped whenever polling starts or stops: a heartbeat loop of an older round ends. */
  pollRound: number;
  /** The heartbeat under way, if any: its claims must run before close() ends. */
  beat: Promise<void> | null;
}

export function newConnection(
  urls: string[],
  token: string,
  httpTimeoutMs: number,
  backoff: Backoff,
): Connection {
  return {
    urls,
    token,
    httpTimeoutMs,
    urlIndex: 0,
    backoff,
    ws: null,
    sockets: new Set(),
    generation: 0,
    current: -1,
    socketFailures: 0,
    upSince: 0,
    leaseMs: DEFAULT_LEASE_MS,
    maxPayloadBytes: 1_048_576,
    reconnectTimer: null,
    pollTimer: null,
    pollRound: 0,
    beat: null,
  };
}

/** Every frame the hub sends a daemon but the hello. */
export type DaemonFrame = Exclude<DaemonOutbound, HelloFrame>;

/** What the daemon is told about its sockets. */
export interface SocketEvents {
  hello(link: Link, frame: HelloFrame): void;
  frame(link: Link, frame: DaemonFrame): void;
  /** The socket closed; `newest`: it was the latest one opened (not one replaced on purpose). */
  closed(link: Link, newest: boolean): void;
  error(err: Error): void;
}

/** One socket's state. */
export interface Link {
  readonly ws: WebSocket;
  readonly generation: number;
  readonly conn: Connection;
  readonly events: SocketEvents;
  helloSeen: boolean;
  lastHeard: number;
  /** The hub's ping interval (from hello). */
  heartbeatMs: number;
  watchdog: NodeJS.Timeout | undefined;
}

const links = new WeakMap<WebSocket, Link>();

const baseUrl = (conn: Connection): string => conn.urls[conn.urlIndex % conn.urls.length] as string;

/** Opens a socket to the current URL, as the newest generation. */
export function openSocket(conn: Connection, events: SocketEvents): void {
  const ws = new WebSocket(`${baseUrl(conn).replace(/^http/, 'ws')}/v1/daemon/ws`, {
    headers: { authorization: `Bearer ${conn.token}` },
    handshakeTimeout: 5_000,
  });
  const link: Link = {
    ws,
    generation: ++conn.generation,
    conn,
    events,
    helloSeen: false,
    lastHeard: Date.now(),
    heartbeatMs: 15_000,
    watchdog: undefined,
  };
  links.set(ws, link);
  conn.sockets.add(ws);
  link.watchdog = setInterval(daemonSocketWatchdog, 1_000, link);
  link.watchdog.unref();
  ws.on('ping', daemonSocketOnPing);
  ws.on('message', daemonSocketOnMessage);
  ws.on('error', daemonSocketOnError);
  ws.on('close', daemonSocketOnClose);
}

/** The hub pings every heartbeat interval; silence for three means a dead path. */
function daemonSocketWatchdog(link: Link): void {
  if (Date.now() - link.lastHeard > 3 * link.heartbeatMs) link.ws.terminate();
}

function daemonSocketOnPing(this: WebSocket): void {
  const link = links.get(this);
  if (link) link.lastHeard = Date.now();
}

function daemonSocketOnMessage(this: WebSocket, data: WebSocket.RawData): void {
  const link = links.get(this);
  if (!link) return;
  link.lastHeard = Date.now();
  // Frames are checked against the protocol: one this SDK does not know (a newer hub's)
  // or a malformed one is ignored, never half-handled.
  const parsed = parseFrame(DaemonOutbound, data.toString());
  if (!parsed.ok) return;
  const frame = parsed.frame;
  if (frame.type === 'hello') {
    link.helloSeen = true;
    link.heartbeatMs = frame.heartbeat_interval_ms || link.heartbeatMs;
    link.conn.maxPayloadBytes = frame.max_payload_bytes || link.conn.maxPayloadBytes;
    link.events.hello(link, frame);
  } else {
    link.events.frame(link, frame);
  }
}

function daemonSocketOnError(this: WebSocket, err: Error): void {
  links.get(this)?.events.error(err);
}

function daemonSocketOnClose(this: WebSocket): void {
  const link = links.get(this);
  if (!link) return;
  const { conn } = link;
  clearInterval(link.watchdog);
  conn.sockets.delete(this);
  if (conn.ws === this) conn.ws = null;
  const newest = link.generation === conn.generation;
  if (newest) {
    if (link.helloSeen && Date.now() - conn.upSince > STABLE_MS) conn.backoff.reset();
    if (!link.helloSeen) conn.socketFailures++;
    conn.urlIndex++;
  }
  link.events.closed(link, newest);
}

/**
 * A socket said hello: it becomes the one in use, with the node's lease length. Returns
 * the one it replaces (the caller lets it go once the new one is set up).
 */
export function adopt(link: Link, leaseMs: number): WebSocket | null {
  const { conn } = link;
  const previous = conn.ws;
  conn.ws = link.ws;
  conn.current = link.generation;
  conn.leaseMs = leaseMs > 0 ? leaseMs : DEFAULT_LEASE_MS;
  conn.upSince = Date.now();
  conn.socketFailures = 0;
  return previous === link.ws ? null : previous;
}

/** The socket in use, if it is open. */
export function openWs(conn: Connection): WebSocket | null {
  return conn.ws?.readyState === WebSocket.OPEN ? conn.ws : null;
}

export function sendFrame(conn: Connection, frame: unknown): void {
  openWs(conn)?.send(JSON.stringify(frame));
}

export function closeSockets(conn: Connection, reason: string): void {
  for (const ws of conn.sockets) ws.close(1000, reason);
  conn.ws = null;
}

/** One HTTP call to the current URL; given up after `httpTimeoutMs` (a network error). */
export function post(conn: Connection, path: string, body: unknown): Promise<HttpAnswer> {
  return postText(conn, path, JSON.stringify(body));
}

/** `post` with a body already serialised (output batches are built as text). */
export async function postText(conn: Connection, path: string, body: string): Promise<HttpAnswer> {
  const res = await fetch(`${baseUrl(conn)}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${conn.token}`, 'content-type': 'application/json' },
    body,
    signal: AbortSignal.timeout(conn.httpTimeoutMs),
  });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: the status says enough
  }
  if (res.status >= 500) conn.urlIndex++;
  return {
    status: res.status,
    body: parsed,
    retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
  };
}

/**
 * One lease renewal: a `renew` frame on the open socket (answered by `renewed`, so the
 * answer here is `pending`), else an HTTP call. A failed call is `pending` too: the job
 * table tries again next round.
 */
export async function renewLease(
  conn: Connection,
  id: string,
  epoch: number,
  onError: (err: Error) => void,
): Promise<RenewAnswer> {
  if (openWs(conn)) {
    sendFrame(conn, { type: 'renew', id, epoch });
    return 'pending';
  }
  try {
    const path = `/v1/daemon/requests/${encodeURIComponent(id)}/renew`;
    const v = verdict(await post(conn, path, { epoch }));
    return v.kind === 'ok' ? 'renewed' : v.kind === 'final' ? 'lost' : 'pending';
  } catch (err) {
    onError(err as Error);
    return 'pending';
  }
}
