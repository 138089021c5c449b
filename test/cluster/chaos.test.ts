/**
 * The chaos suite: three node processes and one redis-server with AOF, 20 SDK daemons
 * with random capacities and work times, clients creating requests on every node (some
 * with max_attempts > 1) and waiting by long-poll or client websocket, while nodes are
 * SIGKILLed and SIGTERMed, pub/sub connections killed, Redis restarted (SIGTERM) and
 * crashed (SIGKILL, restarted from its AOF), and daemon sockets cut; and, at the same
 * time on another node, a node paused (SIGSTOP) past the lease and resumed, a node's
 * link to Redis black-holed and then healed, or black-holed and then cut. Then, once
 * every node is healthy, no long-poll and no subscribe may hang on any node; and:
 * nothing lost, nothing done twice, nobody left waiting.
 *
 * Output streams (DESIGN.md section 6). About one request in seven is marked in its
 * payload (`stream`: 3 to 32 chunks); its handler writes that many chunks with
 * `ctx.output`, with small awaits between (up to a second in all), before its result,
 * and its daemon logs per attempt (id, epoch) every value it wrote and which writes
 * resolved (the hub stored them) or rejected (lease_lost ...). A bounded number of
 * those requests are also followed while they run: by a client websocket (`subscribe`
 * with `output: true`, resubscribed on any live node with `after` = the last offset it
 * has after every drop, and after an error frame) or by SSE (reconnected with `Last-Event-ID`). Each reader
 * keeps every chunk as it came until it sees the terminal state. At the end, for every
 * streaming request:
 *   O1 its stored output, read by HTTP paging, has offsets 1..N, each once, in order;
 *      the epochs never decrease along the offsets and none is past the record's epoch
 *      (chunks of a new attempt follow those of the abandoned one).
 *   O2 the chunks of each epoch were written by the attempt that ran at that epoch:
 *      they are a prefix of what it wrote, in order (an abandoned attempt may have
 *      written more than was stored, the fence refusing the rest), and they include every
 *      write whose promise resolved (an ack means stored). If the request completed, the
 *      chunks of the record's epoch are exactly what that attempt wrote, every write
 *      resolved (the result is reported only once its output is stored).
 *   O3 every reader's reassembled output is the stored output: the same chunks
 *      (offset, epoch, data), in order, none missing, none repeated.
 *
 * Ordering keys (docs/PROTOCOL.md). One request in five carries an `ordering_key`, one
 * of four per runtime: every producer creates into the same line (runtime, key) for two
 * seconds, then into the next, so that each line fills up from all the producers on all
 * the nodes while the faults stall its head. The producers and the daemons number what
 * they do with one counter (they all run in this process, so its order agrees with every
 * causal chain through the hub): a producer logs when it first sent each create and when
 * it read the 201/200; a daemon logs each handler run (id, epoch) from start to return.
 * A completed request's accepted run is its run at the epoch it completed at (the attempt
 * whose report was accepted). At the end, per line (runtime, key):
 *   K1 the accepted runs never overlap: each starts after the one before it returned.
 *   K2 when X's create was acknowledged before Y's was first sent, X is before Y in the
 *      line (a create joins the line when it is stored, between its send and its
 *      answer; a producer awaits each of its creates, so this holds for each producer's
 *      own sequence and for any two creates apart in time); if X completed, every run of
 *      Y, at any epoch, started after X's accepted run returned. Runs that were not
 *      accepted are otherwise free: an attempt whose lease lapsed (its node paused, its
 *      push late) may still run beside what replaced it, and so may the run of a head
 *      that timed out beside the next one.
 *   K3 each keyed record shows its key, and each line is gone: the key lists nothing
 *      (`?ordering_key=`) and Redis holds no line key for it.
 *
 * Bounded by default (under two minutes, part of `npm test`); CHAOS_LONG=1 runs longer.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { connectDaemon, type Daemon } from '../../src/client/daemon.js';
import { runtimeKeys } from '../../stores/keys.js';
import { auth, clientToken, SECRET } from '../helpers/node.js';
import type { Chunk } from '../helpers/output.js';
import {
  awaitAllReady,
  checkLongPolls,
  checkSubscribes,
  createIdle,
  IDLE_RUNTIME,
} from './end-checks.js';
import { ChaosCluster, type NodeProcess } from './harness.js';
import { checkOrdering, type KeyedCreate, type Run } from './ordering-checks.js';
import { type AttemptLog, checkReassembled, checkStored } from './output-checks.js';
import { type Followed, followBySse, OutputSocket } from './output-readers.js';
import { SocketWaiter, TERMINAL, type Tracked } from './waiters.js';

const LONG = process.env.CHAOS_LONG === '1';
const PLAN = LONG
  ? { requests: 20_000, loadSeconds: 240, producers: 12 }
  : { requests: 2_500, loadSeconds: 30, producers: 8 };
const RUNTIMES = ['rt-0', 'rt-1', 'rt-2', 'rt-3'];
const DAEMONS = 20;
const LEASE_MS = 3_000;
const STORE_LOST_DRAIN_MS = 1_500;
const FAULT_OVERTIME_MS = 20_000;
/** Most streaming requests followed by client websocket, and by SSE. */
const OUTPUT_READERS = { socket: 60, sse: 30 };
/** Ordering keys per runtime, and how long all producers create into one line. */
const KEYS_PER_RUNTIME = 4;
const KEY_TURN_MS = 2_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;

describe('chaos: three nodes, one Redis, twenty daemons, faults throughout', () => {
  let cluster: ChaosCluster | undefined;
  const daemons: Daemon[] = [];
  afterAll(async () => {
    // The cluster's processes are stopped whatever a daemon's close does.
    try {
      await Promise.all(daemons.map((d) => d.close()));
    } finally {
      await cluster?.close();
    }
  });

  it(
    'loses nothing, does nothing twice, and leaves nobody waiting',
    async () => {
      cluster = await ChaosCluster.start({
        nodes: 3,
        secret: SECRET,
        env: {
          LOG_LEVEL: 'warn',
          HEARTBEAT_INTERVAL_MS: '500',
          LEASE_MS: String(LEASE_MS),
          SWEEP_INTERVAL_MS: '200',
          SHUTDOWN_GRACE_MS: '1000',
          STORE_LOST_DRAIN_MS: String(STORE_LOST_DRAIN_MS),
        },
      });
      const c = cluster;
      const token = await clientToken('acme');
      const faults = {
        sigkill: 0,
        sigterm: 0,
        pubsubKill: 0,
        redisRestart: 0,
        redisSigkill: 0,
        socketDrops: 0,
        pause: 0,
        linkBlackholeHeal: 0,
        linkBlackholeCut: 0,
      };

      // ---- daemons: each execution logged; each accepted report counted ---------------
      const executions = new Map<string, number[]>(); // id -> epochs it ran at
      const acceptedReports = new Map<string, number>();
      const attempts = new Map<string, Map<number, AttemptLog>>(); // id -> epoch -> log
      const ranTwice: string[] = []; // attempts (id:epoch) whose handler ran twice
      // What producers and daemons did, numbered in one order (K1-K2).
      let clock = 0;
      const tick = () => ++clock;
      const runs: Run[] = [];
      const keyedCreates: KeyedCreate[] = [];

      /** Streams `count` chunks from the attempt, logging what it wrote and how it went. */
      async function streamOutput(
        daemon: number,
        ctx: { id: string; epoch: number; output: (data: unknown) => Promise<void> },
        n: number,
        count: number,
      ): Promise<void> {
        const byEpoch = attempts.get(ctx.id) ?? new Map<number, AttemptLog>();
        attempts.set(ctx.id, byEpoch);
        if (byEpoch.has(ctx.epoch)) ranTwice.push(`${ctx.id}:${ctx.epoch}`);
        const log: AttemptLog = { daemon, sent: [], resolvedUpTo: 0, rejected: {} };
        byEpoch.set(ctx.epoch, log);
        let refused = false;
        const writes: Promise<void>[] = [];
        for (let k = 1; k <= count && !refused; k++) {
          const data = { n, e: ctx.epoch, k };
          log.sent.push(data);
          const write = ctx.output(data).then(
            () => {
              log.resolvedUpTo = Math.max(log.resolvedUpTo, k);
            },
            (err: { code?: string }) => {
              const code = err.code ?? 'error';
              log.rejected[code] = (log.rejected[code] ?? 0) + 1;
              refused = true;
            },
          );
          writes.push(write);
          // Some writes awaited (paced to the hub), the others not, with small waits; two
          // streams in five slower, so that more faults land in the middle of one.
          if (k % 4 === 0) await write;
          else await sleep(n % 5 < 2 ? 15 + Math.random() * 30 : 1 + Math.random() * 8);
        }
        await Promise.all(writes);
      }
      for (let i = 0; i < DAEMONS; i++) {
        const runtime = RUNTIMES[i % RUNTIMES.length] as string;
        const jwt = await auth.sign(
          { sub: `d${i}`, ws: 'acme', role: 'daemon', rt: runtime },
          '1h',
        );
        const urls = [...c.proxies.map((p) => p.url)].sort(() => Math.random() - 0.5);
        const d = connectDaemon({
          url: urls,
          token: jwt,
          capacity: 1 + Math.floor(Math.random() * 4),
          pollIntervalMs: 200,
          backoff: { initialMs: 50, maxMs: 1_000 },
          handlers: {
            '*': async (payload, ctx) => {
              const run: Run = {
                id: ctx.id,
                epoch: ctx.epoch,
                daemon: i,
                start: tick(),
                end: null,
              };
              runs.push(run);
              const epochs = executions.get(ctx.id) ?? [];
              epochs.push(ctx.epoch);
              executions.set(ctx.id, epochs);
              const { n, stream } = payload as { n: number; stream?: number };
              if (stream) await streamOutput(i, ctx, n, stream);
              await sleep(5 + Math.random() * 45);
              run.end = tick();
              return { by: i, payload };
            },
          },
        });
        d.on('reported', (r) => {
          if (r.accepted) acceptedReports.set(r.id, (acceptedReports.get(r.id) ?? 0) + 1);
        });
        daemons.push(d);
      }

      // ---- clients --------------------------------------------------------------------
      const idle = await createIdle(c, token);
      const tracked = new Map<string, Tracked>();
      const sockets = Array.from({ length: 4 }, () => new SocketWaiter(c, token));
      const outputSockets = Array.from({ length: 2 }, () => new OutputSocket(c, token));
      const followed: Followed[] = [];
      const stopReaders = new AbortController();
      const sseReaders: Promise<void>[] = [];
      let streaming = 0;
      /** Some streaming requests get a reader too, spread over the load, bounded. */
      function followOutput(t: Tracked): void {
        const s = streaming++;
        const count = (by: Followed['by']) => followed.filter((f) => f.by === by).length;
        const by =
          s % 6 === 0 && count('socket') < OUTPUT_READERS.socket
            ? 'socket'
            : s % 12 === 3 && count('sse') < OUTPUT_READERS.sse
              ? 'sse'
              : null;
        if (!by) return;
        const f: Followed = { id: t.id, runtime: t.runtime, by, got: [], reconnects: 0 };
        followed.push(f);
        const onSocket = outputSockets[followed.length % outputSockets.length] as OutputSocket;
        if (by === 'socket') onSocket.follow(f);
        else sseReaders.push(followBySse(c, token, f, stopReaders.signal));
      }
      let created = 0;
      let createRetries = 0;
      const loadStarted = Date.now();
      const loadEnds = loadStarted + PLAN.loadSeconds * 1000;
      // On a loaded machine a fault round takes longer (a node restart waits for it to be
      // ready) and the process-and-Redis lane may not get round to every kind in time: it
      // goes on, up to FAULT_OVERTIME_MS, until each has happened once, and the load with it.
      const LANE_KINDS: (keyof typeof faults)[] = [
        'sigkill',
        'sigterm',
        'pubsubKill',
        'redisRestart',
        'redisSigkill',
        'socketDrops',
      ];
      const laneMissing = () => LANE_KINDS.some((k) => faults[k] === 0);
      let overtime = false;

      async function createOne(n: number): Promise<void> {
        // A keyed request goes to the line whose turn it is, whoever creates it.
        const turn = Math.floor(Date.now() / KEY_TURN_MS);
        const keyed = n % 5 === 1;
        const runtime = keyed ? (RUNTIMES[turn % RUNTIMES.length] as string) : pick(RUNTIMES);
        const orderingKey = keyed
          ? `k${Math.floor(turn / RUNTIMES.length) % KEYS_PER_RUNTIME}`
          : null;
        // Two keyed requests in three may be redelivered: a requeued head keeps its place.
        const maxAttempts = (keyed ? n % 3 !== 0 : n % 3 === 0) ? 3 : 1;
        const stream = n % 7 === 3 ? 3 + ((n * 13) % 30) : 0;
        const payload = stream ? { n, stream } : { n };
        const body = JSON.stringify({
          kind: 'job',
          payload,
          max_attempts: maxAttempts,
          ...(orderingKey ? { ordering_key: orderingKey } : {}),
        });
        const sent = tick();
        for (;;) {
          try {
            const res = await fetch(`${c.liveNode().url}/v1/runtimes/${runtime}/requests`, {
              method: 'POST',
              headers: {
                authorization: `Bearer ${token}`,
                'content-type': 'application/json',
                'idempotency-key': `chaos-${n}`,
              },
              body,
              signal: AbortSignal.timeout(5_000),
            });
            if (res.status === 201 || res.status === 200) {
              const r = (await res.json()) as { id: string };
              const acked = tick();
              const t: Tracked = {
                id: r.id,
                runtime,
                maxAttempts,
                createdAt: Date.now(),
                waiter: n % 2 === 0 ? 'poll' : 'socket',
                stream,
                orderingKey,
              };
              tracked.set(r.id, t);
              if (orderingKey) {
                keyedCreates.push({ id: r.id, line: `${runtime}/${orderingKey}`, sent, acked });
              }
              if (stream) followOutput(t);
              if (t.waiter === 'poll') void pollUntilTerminal(t);
              else (sockets[n % sockets.length] as SocketWaiter).watch(t);
              return;
            }
            await res.body?.cancel();
          } catch {
            // node down or Redis down: the same idempotency key, on another node
          }
          createRetries++;
          await sleep(50 + Math.random() * 100);
        }
      }

      async function pollUntilTerminal(t: Tracked): Promise<void> {
        while (!t.seenTerminal) {
          try {
            const res = await fetch(
              `${c.liveNode().url}/v1/runtimes/${t.runtime}/requests/${t.id}?wait_ms=5000`,
              {
                headers: { authorization: `Bearer ${token}` },
                signal: AbortSignal.timeout(10_000),
              },
            );
            if (res.ok) {
              const r = (await res.json()) as { status: string };
              if (TERMINAL.has(r.status)) t.seenTerminal = { status: r.status, at: Date.now() };
            } else {
              await res.body?.cancel();
              await sleep(100);
            }
          } catch {
            await sleep(100);
          }
        }
      }

      /** A client call whose answer does not matter, only what it leaves behind. */
      const probe = (node: NodeProcess, path: string) =>
        fetch(`${node.url}${path}`, {
          headers: { authorization: `Bearer ${token}` },
          signal: AbortSignal.timeout(5_000),
        }).then(
          (res) => res.body?.cancel(),
          () => {},
        );

      const producers = Array.from({ length: PLAN.producers }, async () => {
        while (created < PLAN.requests && (Date.now() < loadEnds || overtime)) {
          const n = created++;
          await createOne(n);
          await sleep(Math.random() * 20);
        }
      });

      // ---- faults -----------------------------------------------------------------------
      // Two lanes at once, each on its own node: process and Redis faults, and the
      // faults of one node's time and links. `busy` keeps them off each other's node.
      const admin = c.redis.client();
      const busy = new Set<NodeProcess>();
      // When each fault began and ended (ms since the load began), for failure reports.
      const timeline: string[] = [];
      const note = (what: string) => timeline.push(`${Date.now() - loadStarted} ${what}`);
      const freeNode = () => pick(c.nodes.filter((n) => n.running && !busy.has(n)));
      const chaos = (async () => {
        let round = 0;
        while (
          Date.now() < loadEnds - 3_000 ||
          (laneMissing() && Date.now() < loadEnds + FAULT_OVERTIME_MS)
        ) {
          overtime = Date.now() >= loadEnds - 3_000;
          round++;
          await sleep(800 + Math.random() * 700);
          if (Math.random() < 0.5) faults.socketDrops += pick(c.proxies).dropAll() > 0 ? 1 : 0;
          const which = round % 6;
          if (which === 1 || which === 4) {
            const victim = freeNode();
            busy.add(victim);
            note(`sigkill hub-${victim.index}`);
            await victim.kill();
            faults.sigkill++;
            await sleep(500 + Math.random() * 1_000);
            await victim.start();
            note(`started hub-${victim.index}`);
            busy.delete(victim);
          } else if (which === 3) {
            await admin.client('KILL', 'TYPE', 'pubsub').catch(() => 0);
            note('pubsub connections killed');
            faults.pubsubKill++;
          } else if (which === 5 && faults.sigterm <= faults.redisRestart + faults.redisSigkill) {
            const victim = freeNode();
            busy.add(victim);
            note(`sigterm hub-${victim.index}`);
            await victim.term();
            faults.sigterm++;
            await victim.start();
            note(`started hub-${victim.index}`);
            busy.delete(victim);
          } else if (which === 2 || which === 0) {
            // Redis goes away: a crash (SIGKILL) first, then a restart (SIGTERM: Redis
            // writes its AOF out and exits), alternating. Both come back from the AOF;
            // the harness runs Redis with `appendfsync always`, so even a crash loses no
            // acknowledged write (with `everysec` it may lose about two seconds of them:
            // see docs/OPERATIONS.md).
            const crash = faults.redisSigkill <= faults.redisRestart;
            note(crash ? 'redis sigkill' : 'redis sigterm');
            await (crash ? c.redis.kill() : c.redis.stop());
            await sleep(300 + Math.random() * 500);
            await c.redis.restart();
            note('redis restarted');
            if (crash) faults.redisSigkill++;
            else faults.redisRestart++;
          } else {
            faults.socketDrops += pick(c.proxies).dropAll() > 0 ? 1 : 0;
          }
        }
        overtime = false;
      })();

      const nodeFaults = (async () => {
        const kinds = ['pause', 'blackholeHeal', 'blackholeCut'] as const;
        for (let round = 0; Date.now() < loadEnds - 4_000; round++) {
          await sleep(1_000 + Math.random() * 1_000);
          const victim = freeNode();
          if (!victim) continue;
          busy.add(victim);
          const link = c.redisLinks[victim.index - 1] as (typeof c.redisLinks)[number];
          const kind = kinds[round % kinds.length];
          if (kind === 'pause') {
            // Past the lease: other nodes' sweepers requeue or time out what it held,
            // and its daemons' late reports must be refused (lease_lost), not accepted.
            victim.pause();
            note(`paused hub-${victim.index}`);
            await sleep(LEASE_MS + 1_000 + Math.random() * 500);
            victim.resume();
            note(`resumed hub-${victim.index}`);
            faults.pause++;
          } else {
            // Past STORE_LOST_DRAIN_MS plus a command timeout: the node must notice it
            // has lost the store and drain its daemons to the others. Meanwhile a client
            // long-polls there on a runtime nobody else waits on, so a SUBSCRIBE is in
            // flight when the link heals or is cut: it must settle either way, or the
            // end checks find that runtime hanging on this node.
            link.blackhole();
            note(`black-holed hub-${victim.index}'s Redis link`);
            await sleep(200);
            void probe(victim, `/v1/runtimes/${IDLE_RUNTIME}/requests/${idle}?wait_ms=1000`);
            await sleep(STORE_LOST_DRAIN_MS + 2_000 + Math.random() * 1_000);
            if (kind === 'blackholeHeal') {
              link.heal();
              faults.linkBlackholeHeal++;
            } else {
              link.cut();
              faults.linkBlackholeCut++;
            }
            note(`${kind === 'blackholeHeal' ? 'healed' : 'cut'} hub-${victim.index}'s Redis link`);
          }
          busy.delete(victim);
        }
      })();

      await Promise.all([...producers, chaos, nodeFaults]);
      for (const n of c.nodes) if (!n.running) await n.start();

      // ---- end checks: once every node is healthy, nothing hangs on any node -----------
      // Before the settle phase, while the waiters' subscriptions are still held: a
      // subscription a fault left stuck is found where it is.
      const endFailures = await awaitAllReady(c);
      const pollTargets = [
        ...RUNTIMES.flatMap((runtime) =>
          [...tracked.values()]
            .filter((t) => t.runtime === runtime)
            .slice(-2)
            .map((t) => ({ runtime, id: t.id })),
        ),
        { runtime: IDLE_RUNTIME, id: idle, expect: 'pending' },
      ];
      endFailures.push(...(await checkLongPolls(c, token, pollTargets)));
      endFailures.push(...(await checkSubscribes(c, token, [...RUNTIMES, IDLE_RUNTIME])));
      console.info(
        `chaos end checks: ${pollTargets.length * c.nodes.length} long-polls and ` +
          `${(RUNTIMES.length + 1) * c.nodes.length} subscribes on ${c.nodes.length} nodes, ` +
          `${endFailures.length} failed${endFailures.length ? `:\n  ${endFailures.join('\n  ')}` : ''}`,
      );
      expect
        .soft(endFailures, 'every long-poll and every subscribe, on every node, answers in time')
        .toEqual([]);

      // ---- settle: every waiter sees its request end ------------------------------------
      const allSeen = () =>
        [...tracked.values()].every((t) => t.seenTerminal) && followed.every((f) => f.ended);
      // Once the end checks have found a hang, waiting longer only delays the report.
      const settleBy = Date.now() + (endFailures.length > 0 ? 15_000 : 120_000);
      while (!allSeen() && Date.now() < settleBy) await sleep(200);
      for (const s of [...sockets, ...outputSockets]) s.close();
      stopReaders.abort();
      await Promise.all(sseReaders);

      // ---- the truth, read back from the hub ---------------------------------------------
      const finalStatus = new Map<string, string>();
      let requeues = 0;
      const timeoutCodes: Record<string, number> = {};
      // Read with retries: a node restarted last may still be reconnecting to Redis.
      const read = async (path: string): Promise<any> => {
        for (let i = 0; ; i++) {
          const res = await fetch(`${c.liveNode().url}${path}`, {
            headers: { authorization: `Bearer ${token}` },
          }).catch(() => null);
          if (res?.ok) return res.json();
          await res?.body?.cancel();
          if (i > 100) throw new Error(`GET ${path} kept failing: ${res?.status}`);
          await sleep(100);
        }
      };
      const finalEpoch = new Map<string, number>();
      const orderingFailures: string[] = [];
      for (const t of tracked.values()) {
        const r = (await read(`/v1/runtimes/${t.runtime}/requests/${t.id}`)) as {
          status: string;
          attempt: number;
          epoch: number;
          error: { code: string } | null;
          ordering_key: string | null;
        };
        finalStatus.set(t.id, r.status);
        finalEpoch.set(t.id, r.epoch);
        if (r.ordering_key !== t.orderingKey) {
          orderingFailures.push(
            `${t.id}: K3 ordering_key ${r.ordering_key}, created with ${t.orderingKey}`,
          );
        }
        requeues += Math.max(0, r.attempt - 1);
        if (r.status === 'timeout') {
          const code = r.error?.code ?? 'none';
          timeoutCodes[code] = (timeoutCodes[code] ?? 0) + 1;
        }
      }
      const listed = new Set<string>();
      for (const runtime of RUNTIMES) {
        let cursor: string | null = null;
        do {
          const q: string = cursor ? `&cursor=${cursor}` : '';
          const page = (await read(`/v1/runtimes/${runtime}/requests?limit=500${q}`)) as {
            requests: { id: string; status: string }[];
            next_cursor: string | null;
          };
          for (const r of page.requests) if (TERMINAL.has(r.status)) listed.add(r.id);
          cursor = page.next_cursor;
        } while (cursor);
      }

      // ---- output: stored, as the daemons sent it, as the readers reassembled it ----------
      const storedOutput = new Map<string, Chunk[]>();
      const outputFailures = [...ranTwice.map((a) => `${a}: the handler ran twice`)];
      for (const t of tracked.values()) {
        if (!t.stream) continue;
        const chunks: Chunk[] = [];
        for (let after = 0; ; ) {
          const page = (await read(
            `/v1/runtimes/${t.runtime}/requests/${t.id}/output?after=${after}&limit=1000`,
          )) as { chunks: Chunk[]; next_after: number; done: boolean };
          chunks.push(...page.chunks);
          after = page.next_after;
          if (page.done) break;
          if (page.chunks.length === 0) {
            // Every request is terminal by now: its last page says done.
            outputFailures.push(`${t.id}: an empty output page after ${after}, not done`);
            break;
          }
        }
        storedOutput.set(t.id, chunks);
      }
      for (const [id, stored] of storedOutput) {
        const record = { status: finalStatus.get(id) as string, epoch: finalEpoch.get(id) ?? -1 };
        outputFailures.push(...checkStored(id, stored, record, attempts.get(id) ?? new Map()));
      }
      for (const f of followed) {
        if (!f.ended) outputFailures.push(`${f.id}: its ${f.by} reader never saw it end`);
        else {
          const stored = storedOutput.get(f.id) ?? [];
          outputFailures.push(...checkReassembled(f.id, `${f.by} reader`, f.got, stored));
        }
      }
      const outputFigures = {
        streaming: storedOutput.size,
        completed: [...storedOutput.keys()].filter((id) => finalStatus.get(id) === 'completed')
          .length,
        chunksStored: [...storedOutput.values()].reduce((n, cs) => n + cs.length, 0),
        chunksWritten: [...attempts.values()].reduce(
          (n, byEpoch) => n + [...byEpoch.values()].reduce((m, a) => m + a.sent.length, 0),
          0,
        ),
        withEarlierEpochs: [...storedOutput.values()].filter(
          (cs) => new Set(cs.map((c) => c.epoch)).size > 1,
        ).length,
        writesRejected: {} as Record<string, number>,
        readers: { socket: 0, sse: 0 },
        readerReconnects: followed.reduce((n, f) => n + f.reconnects, 0),
      };
      for (const byEpoch of attempts.values()) {
        for (const a of byEpoch.values()) {
          for (const [code, k] of Object.entries(a.rejected)) {
            outputFigures.writesRejected[code] = (outputFigures.writesRejected[code] ?? 0) + k;
          }
        }
      }
      for (const f of followed) outputFigures.readers[f.by] += 1;
      console.info(
        `chaos output: ${JSON.stringify(outputFigures)}, ${outputFailures.length} failed` +
          `${outputFailures.length ? `:\n  ${outputFailures.slice(0, 20).join('\n  ')}` : ''}`,
      );
      expect
        .soft(outputFailures, 'output stored as sent, and reassembled as stored (O1-O3)')
        .toEqual([]);

      // ---- ordering keys: one at a time per line, in creation order, lines gone -----------
      const outcomes = new Map(
        keyedCreates.map((k) => [
          k.id,
          { status: finalStatus.get(k.id) as string, epoch: finalEpoch.get(k.id) ?? -1 },
        ]),
      );
      const ordering = checkOrdering(keyedCreates, runs, outcomes);
      // A fresh connection: the faults' one was dropped by the Redis restarts.
      const peek = c.redis.client();
      orderingFailures.push(...ordering.failures);
      for (const runtime of RUNTIMES) {
        for (let k = 0; k < KEYS_PER_RUNTIME; k++) {
          const key = `k${k}`;
          const line = (await read(`/v1/runtimes/${runtime}/requests?ordering_key=${key}`)) as {
            requests: { id: string; status: string }[];
          };
          if (line.requests.length > 0) {
            orderingFailures.push(
              `${runtime}/${key}: K3 the line still lists ${JSON.stringify(line.requests.map((r) => [r.id, r.status]))}`,
            );
          }
          const lineKey = runtimeKeys('sb', { workspace: 'acme', runtime }).line(key);
          if ((await peek.exists(lineKey)) !== 0) {
            const left = await peek.zrange(lineKey, 0, -1, 'WITHSCORES');
            orderingFailures.push(
              `${runtime}/${key}: K3 ${lineKey} still holds ${JSON.stringify(left)}`,
            );
          }
        }
      }
      const byRule: Record<string, number> = {};
      for (const f of orderingFailures) {
        const rule = / (K\d) /.exec(f)?.[1] ?? '?';
        byRule[rule] = (byRule[rule] ?? 0) + 1;
      }
      console.info(
        `chaos ordering: ${JSON.stringify(ordering.figures)}, ${orderingFailures.length} failed` +
          `${orderingFailures.length ? ` ${JSON.stringify(byRule)}:\n  ${orderingFailures.slice(0, 20).join('\n  ')}` : ''}`,
      );
      expect
        .soft(orderingFailures, 'each key one at a time, in creation order, its line gone (K1-K3)')
        .toEqual([]);

      // ---- figures ------------------------------------------------------------------------
      const statuses: Record<string, number> = {};
      for (const s of finalStatus.values()) statuses[s] = (statuses[s] ?? 0) + 1;
      const reruns = [...executions.values()].reduce((n, runs) => n + runs.length - 1, 0);
      const latencies = [...tracked.values()]
        .filter((t) => t.seenTerminal)
        .map((t) => (t.seenTerminal?.at ?? 0) - t.createdAt)
        .sort((a, b) => a - b);
      const pct = (p: number) =>
        latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
      console.info(
        `chaos figures: ${tracked.size} requests accepted (${createRetries} create retries), ` +
          `statuses ${JSON.stringify(statuses)}, timeouts by code ${JSON.stringify(timeoutCodes)}, ` +
          `faults ${JSON.stringify(faults)}, redeliveries (requeued claims) ${requeues}, ` +
          `handler runs beyond the first ${reruns}, ` +
          `end-to-end ms p50 ${pct(0.5)} p99 ${pct(0.99)} max ${latencies.at(-1)}`,
      );

      // ---- the guarantees -----------------------------------------------------------------
      const notTerminal = [...finalStatus].filter(([, s]) => !TERMINAL.has(s));
      for (const [id] of notTerminal.slice(0, 3)) {
        const t = tracked.get(id) as Tracked;
        const raw = await peek.hgetall(`sb:{acme/${t.runtime}}:req:${id}`);
        const body = await read(`/v1/runtimes/${t.runtime}/requests/${id}`);
        console.error(
          `not terminal: ${id} raw=${JSON.stringify(raw)} body=${JSON.stringify(body)}`,
        );
      }
      expect(notTerminal, 'every accepted request is terminal').toEqual([]);
      const lost = [...tracked.keys()].filter((id) => !listed.has(id));
      expect(lost, 'accepted ids all listed as terminal').toEqual([]);
      expect(listed.size, 'no terminal request that nobody created').toBe(tracked.size);
      const badReports = [...finalStatus].filter(
        ([id, s]) => (acceptedReports.get(id) ?? 0) !== (s === 'completed' ? 1 : 0),
      );
      expect(badReports, 'exactly one accepted result per completed request').toEqual([]);
      const overRun = [...tracked.values()].filter(
        (t) => (executions.get(t.id)?.length ?? 0) > t.maxAttempts,
      );
      expect(
        overRun.map((t) => t.id),
        'no request ran more than max_attempts times',
      ).toEqual([]);
      const unseen = [...tracked.values()].filter(
        (t) => t.seenTerminal?.status !== finalStatus.get(t.id),
      );
      for (const t of unseen.slice(0, 5)) {
        const record = await read(`/v1/runtimes/${t.runtime}/requests/${t.id}`);
        console.error(
          `never saw the terminal state: ${t.id} runtime ${t.runtime} by ${t.waiter}` +
            `${t.via ? ` on ${t.via}` : ''}, created at ${t.createdAt - loadStarted} ms, last heard ` +
            `${t.lastHeard ? `${t.lastHeard.status} by ${t.lastHeard.frame} at ${t.lastHeard.at - loadStarted} ms` : 'nothing'}, ` +
            `final ${finalStatus.get(t.id)}: ${JSON.stringify(record)}`,
        );
      }
      if (unseen.length > 0) console.error(`fault timeline (ms):\n  ${timeline.join('\n  ')}`);
      expect(
        unseen.map((t) => t.id),
        'every waiting client saw the terminal state',
      ).toEqual([]);
      expect(statuses.completed ?? 0).toBeGreaterThan(tracked.size * 0.9);
      expect(
        faults.sigkill + faults.sigterm + faults.redisRestart + faults.redisSigkill,
      ).toBeGreaterThanOrEqual(LONG ? 20 : 4);
      // Every fault kind happened at least once.
      const missing = Object.entries(faults).filter(([, n]) => n === 0);
      expect(missing, 'fault kinds that never happened').toEqual([]);
      await peek.quit().catch(() => {});
      await admin.quit().catch(() => {});
    },
    (PLAN.loadSeconds + 240) * 1000,
  );
});
