/**
 * Switchboard side by side with BullMQ (issue 10): both on ONE private redis-server (a free
 * port on 127.0.0.1), each side in its own processes, in alternating rounds in one run
 * (Switchboard, BullMQ, Switchboard, ... --rounds of each). Both sides run closed loops of
 * --in-flight (64) lanes: a lane sends its next request only once the waiting client saw
 * the previous one completed, so both have exactly 64 requests in flight. No delays.
 *
 * Per request, Switchboard (3 `node --import tsx src/cli.ts serve` processes A, B, C,
 * REDIS_URL, HUB_SECRET, LOG_LEVEL=warn; a daemon process; a client process):
 *   client POST /v1/runtimes/vs/requests on node A (keep-alive agent) -> node B, holding
 *   the daemon's socket, claims it and pushes the `request` frame -> the daemon SDK
 *   (connectDaemon, capacity 64) runs the handler, which returns the payload at once, and
 *   sends the result -> node B stores it -> node C sends the client's websocket (subscribed
 *   to the runtime) a `request` frame with status `completed`: the lane is done.
 * Per request, BullMQ (a worker process; a producer process that also holds QueueEvents):
 *   Queue.add (removeOnComplete, removeOnFail; one shared ioredis connection) -> the Worker
 *   (concurrency 64, its own connection, duplicated by BullMQ for blocking) runs the
 *   processor, which returns the job's data at once -> BullMQ completes and removes the
 *   job -> QueueEvents in the producer process emits 'completed': the lane is done.
 *
 * Before round 1, 4 x --warmup requests per side, not measured. A round, per side:
 * --warmup requests (not measured); the timed pass of --n requests;
 * an unloaded pass of --dispatch-n requests one at a time; a MONITOR pass of --account-n.
 *  - completed/s: completions of the timed pass / its wall time.
 *  - latency p50/p99/max: per request of the timed pass, from just before create/add to
 *    the waiting client seeing it completed, in the client process.
 *  - dispatch: the payload carries its send time on CLOCK_MONOTONIC (process.hrtime, one
 *    clock for all processes); the handler/processor subtracts it from its own start.
 *    "under load" is the timed pass, "unloaded" the one-at-a-time pass.
 *  - CPU ms/request per process group: utime+stime from /proc/<pid>/stat of every process
 *    of the group, before and after the timed pass (each read 200 ms after the pass, so its
 *    tail of acks is in), / completed. Groups: system = the 3 nodes + the daemon, resp. the
 *    worker; clients = the client process, resp. the producer (with QueueEvents); redis.
 *  - Redis commands per life: INFO commandstats calls over the timed pass (the bench's
 *    INFO calls left out) / completed. Redis counts each `redis.call` inside a script too,
 *    so this is the work Redis did, not round trips.
 *  - client round trips per life: commands the side's processes sent Redis (an EVALSHA is
 *    one, whatever it runs; MULTI, each queued command and EXEC count one each), from
 *    MONITOR during the MONITOR pass / its completions. On Redis 7.0 neither commandstats
 *    nor total_commands_processed tells them apart from the commands scripts run (both
 *    count those, checked on 7.0.15), and CLIENT LIST's tot-cmds is 7.2+; MONITOR marks
 *    each script-run command `[db lua]`. It costs Redis, so it never runs in a timed pass.
 *    Only the connections of the side's processes are counted (their local ports, from
 *    /proc), so the idle side and the bench stay out; the side's own background work
 *    (sweeps, presence, stalled checks) in that pass counts. The idle load of both sides
 *    together is measured once at the start and printed: it is in the commandstats and
 *    Redis CPU figures of either side (Switchboard's sweepers: ~50 EVALSHA/s).
 * The per-round figures, then the medians over rounds, are printed as markdown tables,
 * then one JSON line. Stops by itself (--deadline-s); kills only the processes it started,
 * by PID; talks only to 127.0.0.1.
 * Usage: npm run bench:vs-bullmq [-- --rounds 4 --n 5000 --in-flight 64 --dispatch-n 500
 *        --warmup 500 --account-n 1000 --idle-s 3 --deadline-s 1800 --profile DIR]
 * --profile DIR: every process it starts writes a CPU profile (node --cpu-prof) there.
 */
import { parseArgs } from 'node:util';
import { RedisServer } from '../test/helpers/redis.js';
import { cpuMs, round } from './proc-stats.js';
import type { PassResult, Samples } from './vs-bullmq-common.js';
import { callsDelta, commandCalls, MonitorTap, redisClientPorts } from './vs-bullmq-redis.js';
import {
  commandLines,
  jsonLine,
  medianTable,
  percentiles,
  perLife,
  type RoundMetrics,
  roundsTable,
  SIDE_NAMES,
} from './vs-bullmq-report.js';
import {
  killAll,
  profileInto,
  type SideProcs,
  startBullmq,
  startSwitchboard,
  stopAll,
} from './vs-bullmq-sides.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '4' },
    n: { type: 'string', default: '5000' },
    'in-flight': { type: 'string', default: '64' },
    'dispatch-n': { type: 'string', default: '500' },
    warmup: { type: 'string', default: '500' },
    'account-n': { type: 'string', default: '1000' },
    'idle-s': { type: 'string', default: '3' },
    'deadline-s': { type: 'string', default: '1800' },
    profile: { type: 'string' },
  },
});
if (values.profile) profileInto(values.profile);
const ROUNDS = Number(values.rounds);
const N = Number(values.n);
const IN_FLIGHT = Number(values['in-flight']);
const DISPATCH_N = Number(values['dispatch-n']);
const WARMUP = Number(values.warmup);
const ACCOUNT_N = Number(values['account-n']);
for (const [k, v] of Object.entries({ ROUNDS, N, IN_FLIGHT, DISPATCH_N, WARMUP, ACCOUNT_N })) {
  if (!Number.isInteger(v) || v < (k === 'WARMUP' ? 0 : 1)) {
    console.error(`bench:vs-bullmq: bad ${k} (${v})`);
    process.exit(2);
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

process.on('exit', killAll);
const deadline = setTimeout(() => {
  console.error(`bench:vs-bullmq: gave up after --deadline-s ${values['deadline-s']} s`);
  killAll();
  process.exit(1);
}, Number(values['deadline-s']) * 1000);
deadline.unref();

const sum = (pids: number[]) => pids.reduce((s, pid) => s + cpuMs(pid), 0);

async function runRound(
  p: SideProcs,
  roundNo: number,
  redisPid: number,
  redis: ReturnType<RedisServer['client']>,
) {
  const pass = (n: number, inFlight: number) => p.client.call<PassResult>('pass', { n, inFlight });
  const samples = () => p.handler.call<Samples>('samples');
  if (WARMUP > 0) await pass(WARMUP, IN_FLIGHT);
  await sleep(200);
  await samples();
  const cpu0 = { system: sum(p.system), clients: sum(p.clients), redis: cpuMs(redisPid) };
  const calls0 = await commandCalls(redis);
  const timed = await pass(N, IN_FLIGHT);
  await sleep(200);
  const cpu1 = { system: sum(p.system), clients: sum(p.clients), redis: cpuMs(redisPid) };
  const calls = callsDelta(calls0, await commandCalls(redis));
  const loaded = await samples();

  const unloaded = await pass(DISPATCH_N, 1);
  const unloadedSamples = await samples();

  const redisPort = redis.options.port as number;
  const ports = redisClientPorts([...p.system, ...p.clients], redisPort);
  if (ports.size === 0) throw new Error(`no Redis connections found for ${p.side}`);
  const tap = await MonitorTap.start('127.0.0.1', redisPort, ports);
  const accounted = await pass(ACCOUNT_N, IN_FLIGHT);
  await sleep(200);
  const counts = await tap.stop(redis);
  await samples();

  const done = timed.completed;
  const cpu = {
    system: (cpu1.system - cpu0.system) / done,
    clients: (cpu1.clients - cpu0.clients) / done,
    redis: (cpu1.redis - cpu0.redis) / done,
  };
  const m: RoundMetrics = {
    side: p.side,
    round: roundNo,
    completed: done,
    failed: timed.failed + unloaded.failed + accounted.failed,
    completedPerS: round(done / (timed.elapsedMs / 1000), 1),
    latency: percentiles(timed.latencies),
    dispatchLoaded: percentiles(loaded.dispatch),
    dispatchUnloaded: percentiles(unloadedSamples.dispatch),
    latencyUnloaded: percentiles(unloaded.latencies),
    cpuMsPerRequest: {
      system: round(cpu.system, 4),
      clients: round(cpu.clients, 4),
      redis: round(cpu.redis, 4),
      total: round(cpu.system + cpu.clients + cpu.redis, 4),
    },
    redisCommandsPerLife: round(calls.total / done, 2),
    clientCommandsPerLife: round(counts.client / accounted.completed, 3),
    scriptCommandsPerLife: round(counts.script / accounted.completed, 2),
    monitorCompleted: accounted.completed,
    topRedisCommands: perLife(calls.byCommand, done),
    topClientCommands: perLife(counts.byCommand, accounted.completed),
  };
  console.log(
    `round ${roundNo} ${SIDE_NAMES[p.side]}: ${m.completedPerS.toFixed(0)}/s, latency p50 ${m.latency.p50} ` +
      `p99 ${m.latency.p99} max ${m.latency.max} ms, dispatch p50 ${m.dispatchLoaded.p50} (unloaded ` +
      `${m.dispatchUnloaded.p50}) ms, CPU ms/req ${JSON.stringify(m.cpuMsPerRequest)}, Redis ` +
      `${m.redisCommandsPerLife}/life, round trips ${m.clientCommandsPerLife}/life, failed ${m.failed}`,
  );
  return m;
}

const redisServer = await RedisServer.start();
let exitCode = 0;
try {
  const redis = redisServer.client();
  const redisPid = redisServer.pid as number;
  const sides = [
    await startSwitchboard(redisServer.url, IN_FLIGHT),
    await startBullmq(redisServer.url, IN_FLIGHT),
  ];
  const bullmqVersion = (await import('bullmq/package.json', { with: { type: 'json' } })).default
    .version;
  const redisVersion = /^redis_version:(\S+)/m.exec(await redis.info('server'))?.[1];
  // What the two sides do while nobody sends them work: it falls into the other side's figures.
  const idle0 = await commandCalls(redis);
  const IDLE_S = Number(values['idle-s']);
  await sleep(IDLE_S * 1000);
  const idle = callsDelta(idle0, await commandCalls(redis));
  const setup = {
    node: process.version,
    redis: redisVersion,
    bullmq: bullmqVersion,
    rounds_per_side: ROUNDS,
    n: N,
    in_flight: IN_FLIGHT,
    dispatch_n: DISPATCH_N,
    warmup: WARMUP,
    account_n: ACCOUNT_N,
    redis_connections: Object.fromEntries(
      sides.map((p) => [
        p.side,
        {
          system: redisClientPorts(p.system, redisServer.port).size,
          clients: redisClientPorts(p.clients, redisServer.port).size,
        },
      ]),
    ),
    idle_redis_commands_per_s: round(idle.total / IDLE_S, 1),
    idle_redis_top_per_s: perLife(idle.byCommand, IDLE_S),
  };
  console.log(
    `redis-server ${redisVersion} on ${redisServer.url} (pid ${redisPid}); node ${process.version}; ` +
      `bullmq ${bullmqVersion}; ${ROUNDS} rounds per side of ${N} requests, ${IN_FLIGHT} in flight ` +
      `(warm-up ${WARMUP}, unloaded ${DISPATCH_N}, MONITOR pass ${ACCOUNT_N}); Redis connections ` +
      `${JSON.stringify(setup.redis_connections)}; both sides idle: ` +
      `${setup.idle_redis_commands_per_s} Redis commands/s ${JSON.stringify(setup.idle_redis_top_per_s)}`,
  );
  // Before round 1, a longer warm-up of each side (JIT, pools, script cache), not measured.
  for (const p of sides)
    await p.client.call<PassResult>('pass', { n: 4 * WARMUP, inFlight: IN_FLIGHT });
  for (const p of sides) await p.handler.call<Samples>('samples');
  const rounds: RoundMetrics[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    for (const p of sides) rounds.push(await runRound(p, r, redisPid, redis));
  }
  console.log(`\n${roundsTable(rounds)}\n`);
  console.log(`Medians over ${ROUNDS} rounds:\n\n${medianTable(rounds)}\n`);
  console.log(`${commandLines(rounds)}\n`);
  console.log(jsonLine(rounds, setup));
  if (rounds.some((r) => r.failed > 0)) {
    console.error('bench:vs-bullmq: some requests did not complete');
    exitCode = 1;
  }
} catch (err) {
  console.error('bench:vs-bullmq failed:', err);
  exitCode = 1;
} finally {
  if (values.profile) await stopAll();
  killAll();
  await redisServer.close();
  process.exit(exitCode);
}
