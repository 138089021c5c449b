/**
 * What the processes of bench/vs-bullmq.ts share: the clock, the closed-loop lane runner,
 * and the small IPC protocol between the driver and its children (node's `process.send`
 * channel, one request at a time, answered by id).
 *
 * The clock is CLOCK_MONOTONIC (`process.hrtime`), one clock for every process on the
 * machine, so a send time stamped in one process and a handler start read in another
 * compare to the microsecond (Date.now() would give whole milliseconds).
 */
import type { ChildProcess } from 'node:child_process';

/** Milliseconds on the machine-wide monotonic clock (comparable across processes). */
export function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** The payload of every request (resp. the data of every job): send time and a sequence. */
export interface Payload {
  t: number;
  i: number;
}

/** What a client process answers for one pass. */
export interface PassResult {
  completed: number;
  failed: number;
  elapsedMs: number;
  /** End to end, per request: create/add called -> the waiting client saw it terminal. */
  latencies: number[];
}

/** What a daemon/worker process answers for `samples`: handler start - send time, ms. */
export interface Samples {
  dispatch: number[];
}

/**
 * Runs `n` requests through `lanes` closed loops: a lane starts its next request only when
 * its previous one was seen terminal, so exactly `lanes` are in flight (the last few aside).
 * `one(seq)` sends request number `seq` and resolves when it is terminal (true: completed).
 */
export async function runLanes(
  n: number,
  lanes: number,
  nextSeq: () => number,
  one: (seq: number, t0: number) => Promise<boolean>,
): Promise<PassResult> {
  const latencies: number[] = [];
  let started = 0;
  let failed = 0;
  const t0 = monoMs();
  await Promise.all(
    Array.from({ length: Math.min(lanes, n) }, async () => {
      while (started < n) {
        started++;
        const sent = monoMs();
        const ok = await one(nextSeq(), sent);
        latencies.push(monoMs() - sent);
        if (!ok) failed++;
      }
    }),
  );
  return { completed: n - failed, failed, elapsedMs: monoMs() - t0, latencies };
}

// ---- IPC: driver <-> child ----------------------------------------------------------

interface Call {
  id: number;
  op: string;
  args: Record<string, number>;
}
interface Answer {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** In a child: answer the driver's calls with `handlers`; says {ready: true} first. */
export function serve(
  handlers: Record<string, (args: Record<string, number>) => Promise<unknown> | unknown>,
): void {
  if (!process.send) throw new Error('run this as a child of bench/vs-bullmq.ts (IPC)');
  process.on('message', async (msg: Call) => {
    const answer: Answer = { id: msg.id, ok: true };
    try {
      const handler = handlers[msg.op];
      if (!handler) throw new Error(`unknown op ${msg.op}`);
      answer.value = await handler(msg.args);
    } catch (err) {
      answer.ok = false;
      answer.error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    }
    process.send?.(answer);
  });
  // The driver going away (killed, crashed) ends the child too.
  process.on('disconnect', () => process.exit(0));
  process.send({ id: 0, ok: true, value: 'ready' } satisfies Answer);
}

/** In the driver: call `op` in `child` and wait for its answer. */
export class Rpc {
  #next = 1;
  readonly #waiting = new Map<number, (a: Answer) => void>();
  readonly ready: Promise<void>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.ready = new Promise<void>((resolve, reject) => {
      child.on('message', (a: Answer) => {
        if (a.id === 0) resolve();
        else this.#waiting.get(a.id)?.(a);
      });
      child.once('exit', (code, signal) => {
        const err = new Error(`${name} exited (code ${code}, signal ${signal})`);
        reject(err);
        for (const done of this.#waiting.values()) done({ id: -1, ok: false, error: err.message });
        this.#waiting.clear();
      });
    });
    this.ready.catch(() => {}); // observed by whoever awaits it
  }

  get pid(): number {
    return this.child.pid as number;
  }

  call<T>(op: string, args: Record<string, number> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, (a) => {
        this.#waiting.delete(id);
        if (a.ok) resolve(a.value as T);
        else reject(new Error(`${this.name} ${op}: ${a.error}`));
      });
      this.child.send({ id, op, args } satisfies Call);
    });
  }
}
