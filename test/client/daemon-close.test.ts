/**
 * close() while an HTTP heartbeat is under way: the heartbeat's failure (a node that
 * lost its store answers 503) is the poll loop's to retry, never close()'s to throw.
 */
import http, { type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, it } from 'vitest';
import { connectDaemon } from '../../src/client/daemon.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { daemonToken } from '../helpers/node.js';

const { defer } = stopAfterEach();

it('close() resolves when the heartbeat under way answers 503', async () => {
  let held: ServerResponse | null = null;
  let arrived!: () => void;
  const heartbeat = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  // Upgrades are refused (so the SDK polls); the first heartbeat is held until close().
  const srv = http.createServer((req, res) => {
    req.on('error', () => {});
    res.on('error', () => {});
    req.resume();
    if (req.url === '/v1/daemon/heartbeat' && held === null) {
      held = res;
      arrived();
      return;
    }
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end(JSON.stringify({ error: { code: 'store_unavailable', message: 'store lost' } }));
  });
  srv.on('upgrade', (_req, socket) => {
    socket.on('error', () => {});
    socket.end('HTTP/1.1 503 Service Unavailable\r\n\r\n');
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  defer(async () => {
    srv.closeAllConnections();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  });
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const daemon = connectDaemon({
    url,
    token: await daemonToken('laptop'),
    handlers: {},
    socketFailuresBeforePolling: 1,
    closeTimeoutMs: 2_000,
  });
  await heartbeat;
  const closing = daemon.close();
  const res = held as ServerResponse | null;
  res?.writeHead(503, { 'content-type': 'application/json' });
  res?.end(JSON.stringify({ error: { code: 'store_unavailable', message: 'store lost' } }));
  await expect(closing).resolves.toBeUndefined();
});
