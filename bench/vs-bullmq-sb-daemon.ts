/**
 * The Switchboard daemon of bench/vs-bullmq.ts: the daemon SDK (src/client/daemon.ts)
 * connected to one node, capacity 64 (--capacity), one handler for every kind that
 * returns the payload at once. It notes, for each request, the handler's start on the
 * machine's monotonic clock minus the send time the payload carries (dispatch time).
 * Driven over IPC: `samples` answers and clears the dispatch times seen so far.
 * Env: BENCH_URL (node), BENCH_TOKEN (a daemon token for the runtime).
 */
import { parseArgs } from 'node:util';
import { connectDaemon } from '../src/client/daemon.js';
import { monoMs, type Payload, type Samples, serve } from './vs-bullmq-common.js';

const { values } = parseArgs({ options: { capacity: { type: 'string', default: '64' } } });
const url = process.env.BENCH_URL;
const token = process.env.BENCH_TOKEN;
if (!url || !token) throw new Error('BENCH_URL and BENCH_TOKEN are required');

let dispatch: number[] = [];
const daemon = connectDaemon({
  url,
  token,
  capacity: Number(values.capacity),
  handlers: {
    '*': (payload) => {
      dispatch.push(monoMs() - (payload as Payload).t);
      return payload;
    },
  },
});
await new Promise<void>((resolve) => {
  if (daemon.state === 'socket') resolve();
  daemon.on('state', (s) => {
    if (s === 'socket') resolve();
  });
});
daemon.on('state', (s) => {
  if (s !== 'socket') console.error(`sb-daemon: state ${s}`);
});

serve({
  samples: (): Samples => {
    const out = dispatch;
    dispatch = [];
    return { dispatch: out };
  },
});
