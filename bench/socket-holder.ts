/**
 * One holder process for bench/sockets.ts: opens `count` idle daemon websockets to one
 * node, spread over many runtimes and several loopback source addresses, says `ready`
 * with capacity 1 after each hello, answers pings (ws does that itself), and then does
 * nothing until it is killed. It reports on stdout, one JSON object a line:
 *   {"type":"ready","open":n}                     every socket said ready
 *   {"type":"failed","message":"..."}             a socket could not be opened (then exit 1)
 *   {"type":"lost","open":n,"code":c}             a socket closed while held
 * Kept out of the node's process (and out of the bench's), so the node's RSS and CPU are
 * its own and the bench's clock is not stalled by thousands of sockets.
 */
import { parseArgs } from 'node:util';
import { type RawData, WebSocket } from 'ws';
import { Auth } from '../src/auth.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    from: { type: 'string', default: '0' },
    count: { type: 'string', default: '0' },
    runtimes: { type: 'string', default: '1000' },
    workspace: { type: 'string', default: 'bench' },
    addresses: { type: 'string', default: '127.0.0.2' },
    concurrency: { type: 'string', default: '100' },
    'handshake-ms': { type: 'string', default: '20000' },
  },
});
const secret = process.env.BENCH_SECRET;
if (!values.url || !secret) {
  console.error('socket-holder: --url and BENCH_SECRET are required');
  process.exit(2);
}
const wsUrl = `${values.url.replace(/^http/, 'ws')}/v1/daemon/ws`;
const from = Number(values.from);
const count = Number(values.count);
const runtimes = Number(values.runtimes);
const addresses = values.addresses.split(',');
const auth = new Auth(secret);
const tokens = new Map<number, Promise<string>>();
const READY = JSON.stringify({ type: 'ready', capacity: 1 });
const HANDSHAKE_TIMEOUT_MS = Number(values['handshake-ms']);

let open = 0;
let holding = false;

function report(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function tokenFor(runtime: number): Promise<string> {
  let token = tokens.get(runtime);
  if (!token) {
    token = auth.sign(
      { sub: `holder-${runtime}`, ws: values.workspace, role: 'daemon', rt: `rt-${runtime}` },
      '2h',
    );
    tokens.set(runtime, token);
  }
  return token;
}

// Per-socket work is done by named handlers, as in the hub; a socket's one piece of
// state (the settle function of its open promise) hangs off the socket.
const SETTLE = Symbol('settle');
type HeldSocket = WebSocket & { [SETTLE]?: (err?: Error) => void };

function holderOnMessage(this: HeldSocket, data: RawData): void {
  const frame = JSON.parse(data.toString()) as { type?: string };
  if (frame.type === 'hello') {
    this.send(READY);
    const settle = this[SETTLE];
    this[SETTLE] = undefined;
    settle?.();
  }
}

function holderOnClose(this: HeldSocket, code: number): void {
  const settle = this[SETTLE];
  this[SETTLE] = undefined;
  if (settle) {
    settle(new Error(`closed ${code} before hello`));
    return;
  }
  open--;
  if (holding) report({ type: 'lost', open, code });
}

function holderOnError(this: HeldSocket, err: Error): void {
  const settle = this[SETTLE];
  this[SETTLE] = undefined;
  settle?.(err);
}

async function openOne(i: number): Promise<void> {
  const token = await tokenFor(i % runtimes);
  const ws = new WebSocket(wsUrl, {
    headers: { authorization: `Bearer ${token}` },
    localAddress: addresses[i % addresses.length],
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    perMessageDeflate: false,
  }) as HeldSocket;
  await new Promise<void>((resolve, reject) => {
    ws[SETTLE] = (err) => (err ? reject(err) : resolve());
    ws.on('message', holderOnMessage);
    ws.on('close', holderOnClose);
    ws.on('error', holderOnError);
  });
  open++;
}

let next = from;
async function worker(): Promise<void> {
  while (next < from + count) await openOne(next++);
}

try {
  await Promise.all(Array.from({ length: Number(values.concurrency) }, worker));
  holding = true;
  report({ type: 'ready', open });
} catch (err) {
  const why = err instanceof Error ? err.message : String(err);
  report({ type: 'failed', message: `${why} (after ${open} of ${count} were open)` });
  process.exit(1);
}
// Held until the bench kills this process (by its PID); the sockets keep the loop alive.
