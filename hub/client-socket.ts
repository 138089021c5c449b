/**
 * The client websocket (`/v1/ws`): a browser subscribes to a runtime (or some of its
 * requests), gets a snapshot, then every state change and presence change. Per
 * subscription the order is: subscribe to hints, read the snapshot, send it, then
 * forward hints (those that arrived meanwhile are replayed after the snapshot), so no
 * change between the read and the first hint is missed. Hints sent while the relay was
 * disconnected are gone: after it reconnects, every subscription is read again.
 *
 * Limits (DESIGN.md section 7): a run of bad frames closes the socket (1008); a socket
 * holds at most `maxSubscribedRuntimes` runtimes and `maxSubscribedIds` ids (past either
 * a subscribe is refused whole, `limit_exceeded`); every frame goes through
 * `sendBounded`, so a client that does not read is closed (1013) instead of growing the
 * node's memory; the socket is pinged every heartbeat interval and terminated after two
 * without a pong. A subscribe whose relay subscription is not live within a bound gets
 * `store_unavailable` rather than waiting for a subscriber connection that is down.
 * Every store call made for the socket goes through its StoreGate (at most
 * `STORE_CALLS_PER_SOCKET` in flight); a subscribe or watch frame that finds the gate's
 * waiting line full is refused (`limit_exceeded`). A subscription still being set up
 * counts against the limits until its snapshot is sent or its reads end, even when it
 * was unsubscribed meanwhile, so subscribe/unsubscribe in a loop cannot pile up reads.
 */
import type { Socket } from 'node:net';
import type { RawData, WebSocket } from 'ws';
import {
  CLOSE,
  ClientInbound,
  type ClientOutbound,
  errorFrame,
  parseFrame,
  TERMINAL,
} from '../protocol/index.js';
import { type RequestRecord, type RuntimeRef, toApiRequest } from '../stores/domain.js';
import { parseHint, type UpdateHint } from '../stores/hints.js';
import { runtimeKeys, workspacePresenceChannel } from '../stores/keys.js';
import type { SocketHost as Hub } from './host.js';
import { OutputFollower } from './output-follow.js';
import { RELAY_TIMEOUT_MS } from './relay.js';
import { BadFrames, sendBounded } from './socket-limits.js';
import { StoreGate } from './socket-work.js';
import { traceDeliver } from './tracing.js';

const SNAPSHOT_LIMIT = 100;
/** Explicit ids of one subscription read at a time (each still through the gate). */
const SNAPSHOT_READERS = 16;
/** First and longest wait before a store read the socket owes its client is tried again. */
const RETRY_MS = 250;
const RETRY_MAX_MS = 5_000;
/** How often a catch-up that outran its reader looks at the socket's buffer again. */
const PACE_MS = 10;
/** Per-socket memory of what was sent is bounded; the oldest entries go first. */
const SENT_LIMIT = 10_000;

interface Subscription {
  rt: RuntimeRef;
  /** null: the whole runtime. */
  ids: Set<string> | null;
  /** Requests whose output this socket streams (subscribe `output: true`), by id. */
  outputs: Map<string, OutputFollower>;
  unsubscribe: (() => void)[];
  /** Hints that arrived before the snapshot went out. */
  buffered: string[] | null;
  /** A refresh (read again after lost hints) is under way; `again`: one more is owed. */
  refreshing: 'no' | 'yes' | 'again';
}

/** A subscribe frame whose snapshot is being read: it holds its place in the limits. */
interface Setup {
  sub: Subscription;
  /** The frame created the subscription (holds a runtime slot). */
  created: boolean;
  ids: number;
}

interface ClientState {
  hub: Hub;
  workspace: string;
  subs: Map<string, Subscription>;
  /** Last state sent per request id (`status:epoch`), so repeats are not resent. */
  sent: Map<string, string>;
  /** Ids whose state `forward` is reading (or will try again); `again`: one more is owed. */
  forwarding: Map<string, 'yes' | 'again'>;
  offReconnect: () => void;
  /** Set while the client watches every runtime's presence (`watch_runtimes`). */
  offWatch: (() => void) | null;
  bad: BadFrames;
  /** Every store call for this socket goes through it. */
  gate: StoreGate;
  setups: Set<Setup>;
  /** Last pong or frame from the client: liveness for the ping check. */
  lastHeard: number;
  /** The last ping sent (0: none yet), and the first one since the client last spoke. */
  pingedAt: number;
  unansweredSince: number;
  pinger: NodeJS.Timeout;
  /** The TCP socket is corked until the next tick (output frames, see corkForTick). */
  corked: boolean;
}

const STATE = Symbol('clientState');
type ClientSocket = WebSocket & { [STATE]: ClientState };

export function attachClientSocket(hub: Hub, ws: WebSocket, workspace: string): void {
  const state: ClientState = {
    hub,
    workspace,
    subs: new Map(),
    sent: new Map(),
    forwarding: new Map(),
    offReconnect: () => {},
    offWatch: null,
    bad: new BadFrames(hub.settings.maxBadFrames),
    gate: new StoreGate(),
    setups: new Set(),
    lastHeard: Date.now(),
    pingedAt: 0,
    unansweredSince: 0,
    pinger: setInterval(clientSocketPing, hub.settings.heartbeatIntervalMs, ws),
    corked: false,
  };
  state.pinger.unref();
  state.offReconnect = hub.relay.onReconnect(() => {
    if (state.offWatch) void watchRuntimes(ws, state);
    for (const sub of state.subs.values()) refresh(ws, state, sub);
  });
  (ws as ClientSocket)[STATE] = state;
  ws.on('message', clientSocketOnMessage);
  ws.on('pong', clientSocketOnPong);
  ws.on('close', clientSocketOnClose);
  ws.on('error', () => {});
  hub.clientOpened();
}

function send(ws: WebSocket, frame: ClientOutbound): void {
  if (ws.readyState !== ws.OPEN) return;
  const max = (ws as ClientSocket)[STATE].hub.settings.maxSocketBufferBytes;
  sendBounded(ws, JSON.stringify(frame), max);
}

/**
 * Every heartbeat interval: terminate a socket that left a ping unanswered for two
 * intervals (checked after pending reads, so a pong queued behind a stall counts),
 * else ping it. Counted from a ping, never from connect: an unasked socket is not silent.
 */
function clientSocketPing(ws: WebSocket): void {
  const state = (ws as ClientSocket)[STATE];
  const now = Date.now();
  const interval = state.hub.settings.heartbeatIntervalMs;
  if (state.pingedAt <= state.lastHeard) state.unansweredSince = now;
  else if (now - state.unansweredSince >= 2 * interval - interval / 10) {
    setImmediate(clientSocketTerminateIfSilent, ws);
    return;
  }
  if (ws.readyState === ws.OPEN) {
    ws.ping();
    state.pingedAt = now;
  }
}

function clientSocketTerminateIfSilent(ws: WebSocket): void {
  const state = (ws as ClientSocket)[STATE];
  if (state.pingedAt > state.lastHeard) ws.terminate();
}

function clientSocketOnPong(this: WebSocket): void {
  (this as ClientSocket)[STATE].lastHeard = Date.now();
}

function clientSocketOnMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  (this as ClientSocket)[STATE].lastHeard = Date.now();
  try {
    onFrame(this, data, isBinary);
  } catch (err) {
    // A frame must never take the node down: report it and keep the socket.
    (this as ClientSocket)[STATE].hub.logger.error({ err }, 'client frame handler failed');
    send(this, errorFrame('invalid_message', 'frame could not be handled'));
  }
}

function onFrame(ws: WebSocket, data: RawData, isBinary: boolean): void {
  const parsed = isBinary
    ? ({
        ok: false,
        error: errorFrame('invalid_message', 'binary frames are not supported'),
      } as const)
    : parseFrame(ClientInbound, data.toString());
  const state = (ws as ClientSocket)[STATE];
  if (!parsed.ok) {
    if (state.bad.bad()) ws.close(CLOSE.policyViolation, 'too many invalid frames');
    else send(ws, parsed.error);
    return;
  }
  state.bad.good();
  const frame = parsed.frame;
  if ((frame.type === 'subscribe' || frame.type === 'watch_runtimes') && state.gate.full) {
    const message = 'too many store reads in flight on this socket';
    // Named, so the client knows which subscribe to ask for again (after a backoff).
    const about =
      frame.type === 'subscribe'
        ? { runtime: frame.runtime, ...(frame.requests ? { requests: frame.requests } : {}) }
        : undefined;
    send(ws, errorFrame('limit_exceeded', message, about));
    return;
  }
  if (frame.type === 'watch_runtimes') return void watchRuntimes(ws, state);
  if (frame.type === 'unwatch_runtimes') {
    state.offWatch?.();
    state.offWatch = null;
    return;
  }
  const rt = { workspace: state.workspace, runtime: frame.runtime };
  if (frame.type === 'subscribe') {
    const output = frame.output && frame.requests ? { after: frame.after ?? {} } : undefined;
    void subscribe(ws, state, rt, frame.requests, output);
  } else unsubscribe(state, rt, frame.requests);
}

/** Presence of the whole workspace: every known runtime now, then every change. */
async function watchRuntimes(ws: WebSocket, state: ClientState): Promise<void> {
  const { hub, workspace } = state;
  if (!state.offWatch) {
    const channel = workspacePresenceChannel(hub.store.settings.prefix, workspace);
    state.offWatch = hub.relay.subscribe(channel, (runtime) => {
      void sendRuntime(ws, state, { workspace, runtime });
    });
  }
  try {
    for (const info of await state.gate.call(() => hub.store.listRuntimes(workspace))) {
      send(ws, { type: 'runtime', runtime_info: info });
    }
  } catch {
    send(ws, errorFrame('store_unavailable', 'could not list runtimes: store unavailable'));
  }
}

/** Why a subscribe would pass the socket's limits, or null when it fits. */
function overLimit(
  state: ClientState,
  runtime: string,
  ids?: string[],
  output = false,
): string | null {
  const { maxSubscribedRuntimes, maxSubscribedIds } = state.hub.settings;
  const existing = state.subs.get(runtime);
  if (output && ids) {
    // Output followers are held per id, also within a whole-runtime subscription.
    let followed = 0;
    for (const sub of state.subs.values()) followed += sub.outputs.size;
    const added = new Set(ids.filter((id) => !existing?.outputs.has(id))).size;
    if (followed + added > maxSubscribedIds) {
      return `at most ${maxSubscribedIds} followed outputs per socket`;
    }
  }
  // Setups of subscriptions dropped meanwhile still read: they keep their places.
  let orphanRuntimes = 0;
  let total = 0;
  for (const setup of state.setups) {
    if (state.subs.get(setup.sub.rt.runtime) === setup.sub) continue;
    if (setup.created) orphanRuntimes += 1;
    total += setup.ids;
  }
  if (!existing && state.subs.size + orphanRuntimes >= maxSubscribedRuntimes) {
    return `at most ${maxSubscribedRuntimes} runtimes per socket`;
  }
  // Ids named for a whole-runtime subscription are not kept; nor are ones already kept.
  if (!ids || (existing && existing.ids === null)) return null;
  const added = new Set(ids.filter((id) => !existing?.ids?.has(id))).size;
  for (const sub of state.subs.values()) total += sub.ids?.size ?? 0;
  if (total + added > maxSubscribedIds) return `at most ${maxSubscribedIds} request ids per socket`;
  return null;
}

async function subscribe(
  ws: WebSocket,
  state: ClientState,
  rt: RuntimeRef,
  ids?: string[],
  output?: { after: Record<string, number> },
) {
  const { hub } = state;
  const refused = overLimit(state, rt.runtime, ids, output !== undefined);
  const about = ids ? { runtime: rt.runtime, requests: ids } : { runtime: rt.runtime };
  if (refused) return send(ws, errorFrame('limit_exceeded', refused, about));
  const keys = runtimeKeys(hub.store.settings.prefix, rt);
  let sub = state.subs.get(rt.runtime);
  const created = !sub;
  if (sub) {
    // Widen an existing subscription; a whole-runtime one stays whole.
    if (sub.ids && ids) for (const id of ids) sub.ids.add(id);
    else sub.ids = null;
  } else {
    sub = {
      rt,
      ids: ids ? new Set(ids) : null,
      outputs: new Map(),
      unsubscribe: [],
      buffered: [],
      refreshing: 'no',
    };
    const s = sub;
    state.subs.set(rt.runtime, s);
    s.unsubscribe.push(
      hub.relay.subscribe(keys.updates, (m) => onHint(ws, state, s, m)),
      hub.relay.subscribe(
        workspacePresenceChannel(hub.store.settings.prefix, rt.workspace),
        (m) => {
          // A socket watching the whole workspace gets this change from that watch.
          if (m === rt.runtime && !state.offWatch) void sendRuntime(ws, state, s.rt);
        },
      ),
    );
  }
  // The followers this frame names; their catch-up goes out before the snapshot. One the
  // socket already has (an earlier frame set it up, maybe one that failed and is being
  // sent again) is caught up too. It never moves back: what it sent on this socket the
  // client has, or will have before the catch-up, even if the frame's `after` predates
  // it; a later `after` (read some other way) moves it on.
  const following: OutputFollower[] = [];
  if (output && ids) {
    for (const id of ids) {
      let follower = sub.outputs.get(id);
      const after = output.after[id];
      if (follower) {
        if (after !== undefined) follower.after = Math.max(follower.after, after);
      } else {
        follower = newFollower(ws, state, sub, id, after ?? 0);
        sub.outputs.set(id, follower);
      }
      following.push(follower);
    }
  }
  const setup: Setup = { sub, created, ids: ids && sub.ids ? ids.length : 0 };
  state.setups.add(setup);
  try {
    if (!(await hub.relay.subscribed(keys.updates, RELAY_TIMEOUT_MS))) {
      // Without a live subscription a snapshot could miss the next change: refuse it and
      // name it, so the client subscribes again. What it added stays (the relay keeps
      // trying; another frame may share it), so nothing another frame set up is lost.
      send(
        ws,
        errorFrame(
          'store_unavailable',
          `could not subscribe to ${rt.runtime}: store unavailable`,
          about,
        ),
      );
      return;
    }
    // The snapshot answers this frame: the ids it named, or the runtime's newest requests.
    const s = sub;
    const records =
      s.ids && ids
        ? await readIds(state, rt, ids, () => state.subs.get(rt.runtime) === s)
        : (await state.gate.call(() => hub.store.list(rt, { limit: SNAPSHOT_LIMIT }))).requests;
    // Dropped while it was read: nobody wants its snapshot.
    if (state.subs.get(rt.runtime) !== sub) return;
    const info =
      (await state.gate.call(() => hub.store.getRuntime(rt))) ?? emptyRuntime(rt.runtime);
    // Read after the records: a request the snapshot shows terminal has all its output sent.
    await Promise.all(following.map((f) => state.gate.call(() => f.catchUp())));
    for (const r of records) remember(state, r.id, `${r.status}:${r.epoch}`);
    send(ws, {
      type: 'snapshot',
      runtime: rt.runtime,
      requests: records.map(toApiRequest),
      runtime_info: info,
    });
  } catch {
    send(
      ws,
      errorFrame('store_unavailable', `could not read ${rt.runtime}: store unavailable`, about),
    );
  } finally {
    state.setups.delete(setup);
    const pending = sub.buffered ?? [];
    sub.buffered = null;
    // A subscription dropped meanwhile forwards nothing.
    if (state.subs.get(rt.runtime) === sub) for (const m of pending) onHint(ws, state, sub, m);
  }
}

/**
 * Reads `ids` through the socket's gate, `SNAPSHOT_READERS` at a time, in their order;
 * stops early once `wanted()` is false (the subscription was dropped).
 */
async function readIds(
  state: ClientState,
  rt: RuntimeRef,
  ids: readonly string[],
  wanted: () => boolean,
): Promise<RequestRecord[]> {
  const { store } = state.hub;
  const found: (RequestRecord | null)[] = new Array(ids.length).fill(null);
  let next = 0;
  const reader = async () => {
    while (next < ids.length && wanted()) {
      const i = next++;
      found[i] = await state.gate.call(() =>
        wanted() ? store.get(rt, ids[i] as string) : Promise.resolve(null),
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(SNAPSHOT_READERS, ids.length) }, reader));
  return found.filter((r): r is RequestRecord => r !== null);
}

function unsubscribe(state: ClientState, rt: RuntimeRef, ids?: string[]): void {
  const sub = state.subs.get(rt.runtime);
  if (!sub) return;
  for (const id of ids ?? []) sub.outputs.delete(id);
  if (ids && sub.ids) {
    for (const id of ids) sub.ids.delete(id);
    if (sub.ids.size > 0) return;
  } else if (ids) {
    return; // ids removed from a whole-runtime subscription: it stays whole
  }
  for (const off of sub.unsubscribe) off();
  state.subs.delete(rt.runtime);
}

function onHint(ws: WebSocket, state: ClientState, sub: Subscription, message: string): void {
  if (sub.buffered) {
    sub.buffered.push(message);
    return;
  }
  const hint = parseHint(message);
  if (!hint) return;
  const follower = sub.outputs.get(hint.id);
  if (hint.output) {
    follower?.onHint(hint.output, hint.epoch);
    return;
  }
  if (sub.ids && !sub.ids.has(hint.id)) return;
  if (follower && TERMINAL.has(hint.status)) {
    endFollowed(ws, state, sub, follower, hint);
    return;
  }
  sendState(ws, state, sub.rt, hint);
}

/**
 * A followed request ended: all its output goes out before the state that says there
 * is no more. A catch-up the store does not answer holds the state back and is tried
 * again, backing off, while the socket still follows the request: the client sees the
 * end late, never without its output.
 */
function endFollowed(
  ws: WebSocket,
  state: ClientState,
  sub: Subscription,
  follower: OutputFollower,
  hint: UpdateHint,
): void {
  untilDone(
    async () => {
      await state.gate.call(() => follower.catchUp());
      sendState(ws, state, sub.rt, hint);
    },
    () =>
      ws.readyState === ws.OPEN &&
      state.subs.get(sub.rt.runtime) === sub &&
      sub.outputs.get(hint.id) === follower,
  );
}

/**
 * Runs `attempt` until it succeeds, waiting RETRY_MS, doubling to RETRY_MAX_MS, between
 * tries, for as long as `wanted()` holds. For the reads a socket owes its client: a
 * terminal state has no later hint, so a read the store did not answer must be made
 * again, not dropped.
 */
function untilDone(attempt: () => Promise<void>, wanted: () => boolean, delayMs = RETRY_MS): void {
  attempt().catch(() => {
    if (!wanted()) return;
    setTimeout(() => {
      if (wanted()) untilDone(attempt, wanted, Math.min(delayMs * 2, RETRY_MAX_MS));
    }, delayMs).unref();
  });
}

function sendState(ws: WebSocket, state: ClientState, rt: RuntimeRef, hint: UpdateHint): void {
  // The hint's own record, when it carries one, is the state to send: no read.
  if (hint.record) sendIfChanged(ws, state, hint.record);
  else forward(ws, state, rt, hint.id);
}

/** A follower of one request's output that sends `output` frames to this socket. */
function newFollower(
  ws: WebSocket,
  state: ClientState,
  sub: Subscription,
  id: string,
  after: number,
): OutputFollower {
  const { store } = state.hub;
  const runtime = JSON.stringify(sub.rt.runtime);
  const quoted = JSON.stringify(id);
  return new OutputFollower(
    (from, limit) => store.readOutput(sub.rt, id, { after: from, limit }),
    after,
    (c) => {
      if (ws.readyState !== ws.OPEN) return;
      corkForTick(ws, state);
      // Built as text: the chunk's data is JSON text already.
      const frame = `{"type":"output","runtime":${runtime},"id":${quoted},"epoch":${c.epoch},"offset":${c.offset},"data":${c.data}}`;
      sendBounded(ws, frame, state.hub.settings.maxSocketBufferBytes);
    },
    () => paced(ws, state.hub.settings.maxSocketBufferBytes),
  );
}

/**
 * Output frames sent in one tick (a hint's chunks, a page of a catch-up) leave in one
 * write rather than one each: the TCP socket is corked until the next tick. Corked
 * bytes count in `bufferedAmount`, so the buffer cap holds as before.
 */
function corkForTick(ws: WebSocket, state: ClientState): void {
  if (state.corked) return;
  // ws keeps its TCP socket private; it corks around each frame itself (cork nests).
  const socket = (ws as unknown as { _socket?: Socket })._socket;
  if (!socket) return;
  state.corked = true;
  socket.cork();
  process.nextTick(uncorkClient, socket, state);
}

function uncorkClient(socket: Socket, state: ClientState): void {
  state.corked = false;
  socket.uncork();
}

/** Resolves once the socket's unsent buffer is below half its cap (or it closed). */
async function paced(ws: WebSocket, max: number): Promise<void> {
  while (ws.readyState === ws.OPEN && ws.bufferedAmount > max / 2) {
    await new Promise((resolve) => setTimeout(resolve, PACE_MS));
  }
}

/**
 * Sends a request's state as the store has it. One read per id at a time: a hint while
 * one is out (or waits to be tried again) makes it read once more after it.
 */
function forward(ws: WebSocket, state: ClientState, rt: RuntimeRef, id: string): void {
  if (state.forwarding.has(id)) {
    state.forwarding.set(id, 'again');
    return;
  }
  state.forwarding.set(id, 'yes');
  untilDone(
    async () => {
      const record = await state.gate.call(() => state.hub.store.get(rt, id));
      const again = state.forwarding.get(id) === 'again';
      state.forwarding.delete(id);
      if (record) sendIfChanged(ws, state, record);
      if (again) forward(ws, state, rt, id);
    },
    () => {
      const open = ws.readyState === ws.OPEN;
      if (!open) state.forwarding.delete(id);
      return open;
    },
  );
}

function sendIfChanged(ws: WebSocket, state: ClientState, record: RequestRecord): void {
  const mark = `${record.status}:${record.epoch}`;
  if (state.sent.get(record.id) === mark) return;
  remember(state, record.id, mark);
  send(ws, { type: 'request', request: toApiRequest(record) });
  if (TERMINAL.has(record.status)) traceDeliver(record, state.hub.settings.nodeId, 'socket');
}

/**
 * Reads a subscription again (after lost hints) and sends whatever changed; a read the
 * store does not answer is made again until it is, while the subscription lasts. One at
 * a time per subscription: one asked for meanwhile runs after it.
 */
function refresh(ws: WebSocket, state: ClientState, sub: Subscription): void {
  if (sub.refreshing !== 'no') {
    sub.refreshing = 'again';
    return;
  }
  sub.refreshing = 'yes';
  const wanted = () => ws.readyState === ws.OPEN && state.subs.get(sub.rt.runtime) === sub;
  untilDone(
    async () => {
      const { store } = state.hub;
      await Promise.all([...sub.outputs.values()].map((f) => state.gate.call(() => f.catchUp())));
      const records = sub.ids
        ? await readIds(state, sub.rt, [...sub.ids], wanted)
        : (await state.gate.call(() => store.list(sub.rt, { limit: SNAPSHOT_LIMIT }))).requests;
      for (const r of records) sendIfChanged(ws, state, r);
      await sendRuntime(ws, state, sub.rt);
      const again = sub.refreshing === 'again';
      sub.refreshing = 'no';
      if (again && wanted()) refresh(ws, state, sub);
    },
    () => {
      if (wanted()) return true;
      sub.refreshing = 'no';
      return false;
    },
  );
}

async function sendRuntime(ws: WebSocket, state: ClientState, rt: RuntimeRef) {
  try {
    const { store } = state.hub;
    const info = (await state.gate.call(() => store.getRuntime(rt))) ?? emptyRuntime(rt.runtime);
    send(ws, { type: 'runtime', runtime_info: info });
  } catch {
    // presence is a hint; the next change resends it
  }
}

function remember(state: ClientState, id: string, mark: string): void {
  state.sent.delete(id);
  state.sent.set(id, mark);
  if (state.sent.size > SENT_LIMIT) {
    const oldest = state.sent.keys().next().value;
    if (oldest !== undefined) state.sent.delete(oldest);
  }
}

function emptyRuntime(id: string) {
  return { id, online: false, last_seen_at: null, connections: [], pending: 0, running: 0 };
}

function clientSocketOnClose(this: WebSocket): void {
  const state = (this as ClientSocket)[STATE];
  clearInterval(state.pinger);
  state.offReconnect();
  state.offWatch?.();
  for (const sub of state.subs.values()) for (const off of sub.unsubscribe) off();
  state.subs.clear();
  state.hub.clientClosed();
}
