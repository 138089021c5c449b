/**
 * The measuring daemon of bench/sockets.ts: one daemon socket on its own runtime
 * (`probe`, capacity 1) and a closed-loop sampler of dispatch latency, from POST create
 * on the node to the request frame arriving here, one request at a time.
 */
import http from 'node:http';
import { WebSocket } from 'ws';
import { round } from './proc-stats.js';

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
function postCreate(url: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/v1/runtimes/probe/requests`,
      {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end('{"kind":"probe"}');
  });
}

export class Probe {
  #next: ((t: number) => void) | undefined;
  private constructor(readonly ws: WebSocket) {}

  /** A daemon socket for runtime `probe`, capacity 1; `token` must name that runtime. */
  static async open(url: string, token: string): Promise<Probe> {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/daemon/ws`, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
    });
    const probe = new Probe(ws);
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (data) => {
        const f = JSON.parse(data.toString());
        if (f.type === 'hello') {
          ws.send(JSON.stringify({ type: 'ready', capacity: 1 }));
          resolve();
        } else if (f.type === 'request') probe.#arrived(f.request);
      });
      ws.on('error', reject);
    });
    return probe;
  }

  #arrived(r: { id: string; epoch: number }): void {
    const t = performance.now();
    // Capacity 1: the result frees the slot for the next sample.
    this.ws.send(
      JSON.stringify({
        type: 'result',
        id: r.id,
        epoch: r.epoch,
        status: 'completed',
        result: null,
      }),
    );
    this.#next?.(t);
    this.#next = undefined;
  }

  /** One sample: POST create, then the arrival of its frame (closed loop, one at a time). */
  async once(url: string, token: string): Promise<number> {
    // Armed before the POST: the frame may arrive before the 201 does.
    const arrived = new Promise<number>((r) => {
      this.#next = r;
    });
    const t0 = performance.now();
    const status = await postCreate(url, token);
    if (status !== 201) throw new Error(`create answered ${status}`);
    return (await arrived) - t0;
  }

  /** Samples back to back for `ms`, so every refresh burst in that time is in the sample. */
  async sample(url: string, token: string, ms: number): Promise<number[]> {
    const out: number[] = [];
    const end = performance.now() + ms;
    while (performance.now() < end) out.push(await this.once(url, token));
    return out.sort((a, b) => a - b);
  }
}

export function stats(sorted: number[]) {
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  return {
    n: sorted.length,
    p50: round(at(0.5), 2),
    p99: round(at(0.99), 2),
    max: round(sorted.at(-1) ?? 0, 2),
  };
}
