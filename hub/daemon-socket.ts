/**
 * The daemon websocket (`/v1/daemon/ws`): hello, ready, renew, result, and the
 * socket's limits (DESIGN.md section 7): bad frames in a row, the ready deadline, and
 * the send buffer cap (in DaemonConnection.trySend), and the store work a socket may
 * start: at most `STORE_CALLS_PER_SOCKET` renew/result frames are being stored at once,
 * a bounded number wait behind them, and past that a renew gets `error limit_exceeded`
 * and a result `nack store_unavailable` with `retry: true` (the code the SDK already
 * retries on, so nothing is lost); a `ready` frame's capacity applies at once, its store
 * work (presence upsert, announce, pump) runs at most once per `READY_WORK_MS`, with the
 * latest capacity. Handlers are named functions at module scope; a connection's state
 * lives in its DaemonConnection and its DaemonWork, found through the socket.
 */
import type { RawData, WebSocket } from 'ws';
import {
  CLOSE,
  DaemonInbound,
  errorFrame,
  type NackFrame,
  OutputFrame,
  parseFrame,
  type ResultFrame,
} from '../protocol/index.js';
import { isStoreError } from '../stores/errors.js';
import type { OutputWrite } from '../stores/store.js';
import { DAEMON_MODES, DaemonConnection } from './daemon-conn.js';
import { OutputWriter } from './daemon-output.js';
import type { SocketHost as Hub } from './host.js';
import { WorkQueue } from './socket-work.js';

/** Least time between two runs of a `ready` frame's store work on one socket. */
export const READY_WORK_MS = 1_000;

type StoreFrame = Exclude<DaemonInbound, { type: 'ready' } | { type: 'output' }>;

/** The socket's store work: frames being stored or waiting, and the ready rate limit. */
interface DaemonWork {
  queue: WorkQueue<StoreFrame>;
  /** Output chunks on their way to the store, in order per attempt (daemon-output.ts). */
  output: OutputWriter;
  /** When the last `ready` store work ran. */
  readyAt: number;
  /** A later `ready`'s store work, deferred to `readyAt + READY_WORK_MS`. */
  readyTimer: NodeJS.Timeout | null;
}

const CONN = Symbol('daemonConnection');
const HUB = Symbol('hub');
const WORK = Symbol('daemonWork');
type DaemonSocket = WebSocket & { [CONN]: DaemonConnection; [HUB]: Hub; [WORK]: DaemonWork };

export function attachDaemonSocket(
  hub: Hub,
  ws: WebSocket,
  principal: { workspace: string; runtime: string; sub: string },
  connectionId: string,
): DaemonConnection {
  const conn = new DaemonConnection(
    connectionId,
    { workspace: principal.workspace, runtime: principal.runtime },
    principal.sub,
    ws,
    hub.settings,
  );
  const socket = ws as DaemonSocket;
  socket[CONN] = conn;
  socket[HUB] = hub;
  socket[WORK] = {
    queue: new WorkQueue((frame) => storeFrame(hub, conn, frame)),
    output: new OutputWriter(
      (id, epoch, writes) => storeOutput(hub, conn, id, epoch, writes),
      hub.settings.maxSocketBufferBytes,
    ),
    readyAt: 0,
    readyTimer: null,
  };
  ws.on('message', daemonSocketOnMessage);
  ws.on('pong', daemonSocketOnPong);
  ws.on('close', daemonSocketOnClose);
  ws.on('error', daemonSocketOnError);
  hub.daemonOpened(conn);
  conn.readyTimer = setTimeout(daemonReadyDeadline, hub.settings.readyTimeoutMs, conn);
  conn.readyTimer.unref();
  void conn.send({
    type: 'hello',
    node_id: hub.settings.nodeId,
    connection_id: connectionId,
    heartbeat_interval_ms: hub.settings.heartbeatIntervalMs,
    lease_ms: hub.settings.leaseMs,
    max_payload_bytes: hub.settings.maxPayloadBytes,
  });
  return conn;
}

function daemonSocketOnMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  const { [CONN]: conn, [HUB]: hub, [WORK]: work } = this as DaemonSocket;
  try {
    onFrame(hub, conn, work, data, isBinary);
  } catch (err) {
    // A frame must never take the node down: report it and keep the socket.
    hub.logger.error({ err }, 'daemon frame handler failed');
    invalid(conn, 'frame could not be handled');
  }
}

function onFrame(
  hub: Hub,
  conn: DaemonConnection,
  work: DaemonWork,
  data: RawData,
  isBinary: boolean,
): void {
  conn.lastHeard = Date.now();
  if (isBinary) {
    invalid(conn, 'binary frames are not part of the protocol');
    return;
  }
  const parsed = parseInbound(data.toString());
  if (!parsed.ok) {
    const raw = parsed.raw as { type?: unknown; id?: unknown; epoch?: unknown } | null;
    const names =
      (raw?.type === 'result' || raw?.type === 'output') &&
      typeof raw.id === 'string' &&
      raw.id.length > 0 &&
      raw.id.length <= 128 &&
      Number.isSafeInteger(raw.epoch) &&
      (raw.epoch as number) >= 0;
    if (names) {
      // A result the hub cannot take is refused for that request (nack invalid_message),
      // so the daemon stops resending it; the request stays running until its lease ends.
      const { id, epoch } = raw as { id: string; epoch: number };
      invalid(conn, parsed.error.message, { id, epoch });
    } else {
      invalid(conn, parsed.error.message);
    }
    return;
  }
  conn.badFrames.good();
  const frame = parsed.frame;
  switch (frame.type) {
    case 'ready':
      if (conn.mode === DAEMON_MODES.connecting || conn.mode === DAEMON_MODES.ready) {
        clearReadyTimer(conn);
        conn.capacity = frame.capacity;
        conn.setMode(DAEMON_MODES.ready);
        readyWork(hub, conn, work);
      }
      return;
    case 'renew':
      if (!work.queue.offer(frame)) {
        void conn.send(errorFrame('limit_exceeded', 'too many renew/result frames in flight'));
      }
      return;
    case 'output': {
      const write = { seq: frame.seq, data: JSON.stringify(frame.data) };
      if (!work.output.offer(frame.id, frame.epoch, write)) {
        void conn.send(outputNack(frame.id, frame.epoch, frame.seq, 'store_unavailable'));
      }
      return;
    }
    case 'result':
      // Marked at once: the slot it frees is released only after its ack, even if queued.
      if (work.queue.offer(frame)) conn.reporting.add(frame.id);
      else void conn.send(refusedResult(frame));
      return;
  }
}

/** How an `output` frame begins when the SDK (src/client/output-chunk.ts) builds it. */
const OUTPUT_HEAD = '{"type":"output",';

/**
 * A daemon frame, valid or not. The union tries every other frame's schema before an
 * `output` frame's, building issues for each: the hot frame is checked against its own
 * schema first. Whatever that does not take (another frame, other key order, an invalid
 * output frame) goes through the union as before, so every refusal reads the same.
 */
function parseInbound(text: string): ReturnType<typeof parseFrame<DaemonInbound>> {
  if (text.startsWith(OUTPUT_HEAD)) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const out = OutputFrame.safeParse(json);
    if (out.success) return { ok: true, frame: out.data };
  }
  return parseFrame(DaemonInbound, text);
}

/** A result the socket's queue cannot take: retryable, so the daemon sends it again. */
function refusedResult(frame: ResultFrame) {
  return {
    type: 'nack',
    id: frame.id,
    epoch: frame.epoch,
    code: 'store_unavailable',
    retry: true,
  } as const;
}

function outputNack(
  id: string,
  epoch: number,
  seq: number,
  code: 'lease_lost' | 'output_limit' | 'store_unavailable' | 'invalid_message',
): NackFrame {
  return { type: 'nack', id, epoch, seq, code, retry: code === 'store_unavailable' };
}

/**
 * One batch of an attempt's output: acknowledged up to the last seq stored (cumulative),
 * then, when the store refused a chunk, a `nack` naming its seq: `output_limit`, or
 * `invalid_message` for a seq gap. A fencing refusal is `lease_lost`; a store failure a
 * retryable `store_unavailable` (the daemon resends what is not acknowledged).
 */
async function storeOutput(
  hub: Hub,
  conn: DaemonConnection,
  id: string,
  epoch: number,
  writes: OutputWrite[],
): Promise<void> {
  const first = (writes[0] as OutputWrite).seq;
  try {
    const out = await hub.store.appendOutput(conn.rt, id, epoch, writes);
    if (out.acked_seq > 0) await conn.send({ type: 'output_ack', id, epoch, seq: out.acked_seq });
    if (out.refused) {
      const seq = writes.find((w) => w.seq > out.acked_seq)?.seq ?? out.acked_seq + 1;
      const code = out.refused === 'output_limit' ? 'output_limit' : 'invalid_message';
      await conn.send(outputNack(id, epoch, seq, code));
    }
  } catch (err) {
    const code = isStoreError(err, 'store_unavailable') ? 'store_unavailable' : 'lease_lost';
    await conn.send(outputNack(id, epoch, first, code));
  }
}

function storeFrame(hub: Hub, conn: DaemonConnection, frame: StoreFrame): Promise<void> {
  return frame.type === 'renew'
    ? renew(hub, conn, frame.id, frame.epoch)
    : result(hub, conn, frame);
}

/** A `ready` frame's store work, now or (a burst of them) once per READY_WORK_MS. */
function readyWork(hub: Hub, conn: DaemonConnection, work: DaemonWork): void {
  if (work.readyTimer) return; // the deferred run reads the capacity then: the latest wins
  const wait = work.readyAt + READY_WORK_MS - Date.now();
  if (wait <= 0) {
    work.readyAt = Date.now();
    hub.daemonReady(conn);
    return;
  }
  work.readyTimer = setTimeout(daemonReadyWorkDue, wait, hub, conn, work);
  work.readyTimer.unref();
}

function daemonReadyWorkDue(hub: Hub, conn: DaemonConnection, work: DaemonWork): void {
  work.readyTimer = null;
  if (conn.mode !== DAEMON_MODES.ready) return;
  work.readyAt = Date.now();
  hub.daemonReady(conn);
}

async function renew(hub: Hub, conn: DaemonConnection, id: string, epoch: number) {
  try {
    const record = await hub.renew(conn.rt, id, epoch);
    await conn.send({
      type: 'renewed',
      id,
      epoch,
      lease_expires_at: new Date(record.lease_expires_at ?? Date.now()).toISOString(),
    });
  } catch (err) {
    if (isStoreError(err, 'store_unavailable')) {
      await conn.send(errorFrame('store_unavailable', 'renew failed: the store is unavailable'));
    } else {
      await conn.send({ type: 'lease_lost', id, epoch });
    }
  }
}

/**
 * A result frame. The slot it frees is released only after the ack went out, so the
 * daemon never sees a new request before the ack that makes room for it.
 */
async function result(hub: Hub, conn: DaemonConnection, frame: ResultFrame) {
  const { id, epoch } = frame;
  try {
    const settle = await hub.reportFromSocket(
      conn,
      id,
      epoch,
      frame.status === 'completed'
        ? { status: 'completed', result: frame.result ?? null }
        : { status: 'failed', error: frame.error },
      frame.trace,
    );
    await conn.send({ type: 'ack', id, epoch });
    settle();
  } catch (err) {
    const retry = isStoreError(err, 'store_unavailable');
    await conn.send({
      type: 'nack',
      id,
      epoch,
      code: retry ? 'store_unavailable' : 'lease_lost',
      retry,
    });
    // Refused at this epoch: whatever this socket held under it is no longer its own.
    if (!retry) hub.settled(conn, id, epoch);
  } finally {
    conn.reporting.delete(id);
  }
}

/**
 * An invalid frame: answered with an error frame, or with a `nack invalid_message` when
 * it was a result for a request it names. More than `maxBadFrames` in a row (no valid
 * frame between) close the socket with 1008.
 */
function invalid(
  conn: DaemonConnection,
  message: string,
  result?: { id: string; epoch: number },
): void {
  if (conn.badFrames.bad()) {
    if (conn.open) conn.ws.close(CLOSE.policyViolation, 'too many invalid frames in a row');
    return;
  }
  if (result) {
    void conn.send({ type: 'nack', ...result, code: 'invalid_message', retry: false });
  } else {
    void conn.send(errorFrame('invalid_message', message));
  }
}

/** The ready deadline passed: a socket that never declared its capacity holds a slot. */
function daemonReadyDeadline(conn: DaemonConnection): void {
  conn.readyTimer = null;
  if (conn.mode === DAEMON_MODES.connecting && conn.open) {
    conn.ws.close(CLOSE.policyViolation, 'no valid ready frame in time');
  }
}

function clearReadyTimer(conn: DaemonConnection): void {
  if (conn.readyTimer) clearTimeout(conn.readyTimer);
  conn.readyTimer = null;
}

function daemonSocketOnPong(this: WebSocket): void {
  (this as DaemonSocket)[CONN].lastHeard = Date.now();
}

function daemonSocketOnClose(this: WebSocket): void {
  const { [CONN]: conn, [HUB]: hub, [WORK]: work } = this as DaemonSocket;
  clearReadyTimer(conn);
  if (work.readyTimer) clearTimeout(work.readyTimer);
  work.readyTimer = null;
  if (conn.mode !== DAEMON_MODES.closed) conn.setMode(DAEMON_MODES.closed);
  hub.daemonClosed(conn);
}

function daemonSocketOnError(this: WebSocket, err: Error): void {
  (this as DaemonSocket)[HUB].logger.debug({ err }, 'daemon socket error');
}
