/**
 * The daemon websocket (`/v1/daemon/ws`): hello, ready, renew, result, and the
 * socket's limits (DESIGN.md section 7): bad frames in a row, the ready deadline, and
 * the send buffer cap (in DaemonConnection.trySend). Handlers are named functions at
 * module scope; a connection's state lives in its DaemonConnection, found through the
 * socket.
 */
import type { RawData, WebSocket } from 'ws';
import { isStoreError } from '../stores/errors.js';
import { DAEMON_MODES, DaemonConnection } from './daemon-conn.js';
import type { SocketHost as Hub } from './host.js';
import { CLOSE, DaemonInbound, errorFrame, parseFrame, type ResultFrame } from './protocol.js';

const CONN = Symbol('daemonConnection');
const HUB = Symbol('hub');
type DaemonSocket = WebSocket & { [CONN]: DaemonConnection; [HUB]: Hub };

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
  const { [CONN]: conn, [HUB]: hub } = this as DaemonSocket;
  try {
    onFrame(hub, conn, data, isBinary);
  } catch (err) {
    // A frame must never take the node down: report it and keep the socket.
    hub.logger.error({ err }, 'daemon frame handler failed');
    invalid(conn, 'frame could not be handled');
  }
}

function onFrame(hub: Hub, conn: DaemonConnection, data: RawData, isBinary: boolean): void {
  conn.lastHeard = Date.now();
  if (isBinary) {
    invalid(conn, 'binary frames are not part of the protocol');
    return;
  }
  const parsed = parseFrame(DaemonInbound, data.toString());
  if (!parsed.ok) {
    const raw = parsed.raw as { type?: unknown; id?: unknown; epoch?: unknown } | null;
    const names =
      raw?.type === 'result' &&
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
        hub.daemonReady(conn);
      }
      return;
    case 'renew':
      void renew(hub, conn, frame.id, frame.epoch);
      return;
    case 'result':
      void result(hub, conn, frame);
      return;
  }
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
  conn.reporting.add(id);
  try {
    await hub.report(
      conn.rt,
      id,
      epoch,
      frame.status === 'completed'
        ? { status: 'completed', result: frame.result ?? null }
        : { status: 'failed', error: frame.error },
    );
    await conn.send({ type: 'ack', id, epoch });
    hub.settled(conn, id, epoch);
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
  const { [CONN]: conn, [HUB]: hub } = this as DaemonSocket;
  clearReadyTimer(conn);
  if (conn.mode !== DAEMON_MODES.closed) conn.setMode(DAEMON_MODES.closed);
  hub.daemonClosed(conn);
}

function daemonSocketOnError(this: WebSocket, err: Error): void {
  (this as DaemonSocket)[HUB].logger.debug({ err }, 'daemon socket error');
}
