/**
 * RedisStore: the source of truth for a cluster of nodes. Every transition is one Lua
 * script on one slot (lua/); this class only builds arguments, runs the script and
 * decodes the reply. Any failure to reach Redis rejects with `store_unavailable`.
 */

import type { CreateRequestBody, RuntimeInfo, TraceContext } from '../../protocol/index.js';
import type { ConnectionInfo, RequestRecord, RuntimeRef } from '../domain.js';
import { fromScriptCode, isStoreError, rateLimitError, StoreError } from '../errors.js';
import { bodyFingerprint, newRequestId } from '../ids.js';
import {
  parseRuntimeTag,
  runtimeKeys,
  sweepBucketKey,
  sweepBucketOf,
  sweepLockKey,
  workspaceRateKey,
  workspaceRuntimesKey,
  workspaceStatsKey,
} from '../keys.js';
import { runtimeInfo } from '../presence.js';
import { bucketTtlMs } from '../rate.js';
import { decodeRecord } from '../record-fields.js';
import { STATS_TTL_MS, type StatsBucket, type StatsWrite } from '../stats.js';
import {
  type ClaimOptions,
  type ConnectionPresence,
  type CreateOptions,
  type CreateResult,
  DEFAULT_STORE_SETTINGS,
  type ExpireResult,
  type ListOptions,
  type ListResult,
  type Outcome,
  type OutputRead,
  type OutputResult,
  type OutputWrite,
  type ReportResult,
  type RequestStore,
  type StoredChunk,
  type StoreSettings,
} from '../store.js';
import { validateBodies } from '../validate.js';
import { openRedis, type RedisConnection, type RedisTarget } from './connection.js';
import { type CreateItem, createArgs, defineScripts, runScript, runtimeArgs } from './scripts.js';

/** A runtime stays in its sweep bucket at least this long after a create touched it. */
export const IDLE_GRACE_MS = 600_000;
/** How long this instance trusts its own recent touch of a runtime's sweep entry. */
const TOUCH_CACHE_MS = 60_000;
const LIST_BUDGET = 1000;
/** Records per category in one expire script call: each call blocks Redis briefly. */
const EXPIRE_BATCH = 500;
/**
 * One `expire` repeats its script while a batch came back full, for at most this long
 * (then the next sweep goes on). One batch takes milliseconds, so a sweep clears tens of
 * thousands of records per runtime: more than a node can complete in that time, so the
 * `done` and `ids` sets cannot outgrow the purge.
 */
const EXPIRE_BUDGET_MS = 500;

type Flat = string[];

/** A runtime's place in its workspace's list is refreshed at most this often per node. */
const SEEN_REFRESH_MS = 60_000;
/** Runtimes remembered for that; past it the memory starts over (a ZADD each, once). */
const SEEN_CACHE_SIZE = 100_000;
/** Workspaces whose create-rate refusal a node remembers (past it, it forgets them all). */
const DENIED_WORKSPACES = 10_000;

export class RedisStore implements RequestStore {
  readonly kind = 'redis';
  readonly settings: Readonly<StoreSettings>;
  readonly #redis: RedisConnection;
  readonly #owned: boolean;
  readonly #touched = new Map<string, number>();
  readonly #listed = new Set<string>();
  /** CREATE_RATE_PER_WORKSPACE: until when a workspace has no token (see #admit). */
  readonly #deniedUntil = new Map<string, number>();
  /** Runtime tag -> when #seen last moved it in its workspace's list (store clock). */
  readonly #seenAt = new Map<string, number>();

  constructor(redis: RedisConnection, settings: Partial<StoreSettings> = {}, owned = false) {
    this.settings = { ...DEFAULT_STORE_SETTINGS, ...settings };
    this.#redis = redis;
    this.#owned = owned;
    defineScripts(redis);
  }

  /** Opens its own connection (closed by `close()`). */
  static async connect(
    target: RedisTarget,
    settings: Partial<StoreSettings> = {},
    onError?: (err: Error) => void,
  ): Promise<RedisStore> {
    const redis = await openRedis(target, onError);
    return new RedisStore(redis, settings, true);
  }

  get redis(): RedisConnection {
    return this.#redis;
  }

  #now(): number | undefined {
    return this.settings.clock?.();
  }

  #call(rt: RuntimeRef) {
    return {
      keys: runtimeKeys(this.settings.prefix, rt),
      now: this.#now(),
      retentionMs: this.settings.retentionMs,
    };
  }

  /** Runs a per-runtime script; maps negative codes and connection failures to errors. */
  async #run(
    name: Parameters<typeof runScript>[1],
    args: { keys: string[]; argv: (string | number)[] },
  ): Promise<unknown> {
    let reply: unknown;
    try {
      reply = await runScript(this.#redis, name, args.keys, args.argv);
    } catch (err) {
      throw unavailable(err);
    }
    if (typeof reply === 'number' && reply < 0) throw fromScriptCode(reply, this.settings);
    return reply;
  }

  rateRefusal(workspace: string, now = this.#now() ?? Date.now()): StoreError | null {
    const limit = this.settings.createRate;
    const denied = this.#deniedUntil.get(workspace);
    if (!limit || denied === undefined) return null;
    if (now < denied) return rateLimitError(limit, denied - now);
    this.#deniedUntil.delete(workspace);
    return null;
  }

  /**
   * Takes `n` tokens of the workspace's create rate (CREATE_RATE_PER_WORKSPACE), or
   * refuses with `limit_exceeded` and when they are due. Its own call, on the
   * workspace's slot: a create the runtime's script then refuses has still used them.
   */
  async #admit(workspace: string, n: number): Promise<void> {
    const limit = this.settings.createRate;
    if (!limit || n === 0) return;
    // Refused for want of one token, a workspace has none before then: every create
    // needs one, so until then this node answers without asking Redis. A flood of
    // refused creates costs the store nothing.
    const now = this.#now() ?? Date.now();
    const refusal = this.rateRefusal(workspace, now);
    if (refusal) throw refusal;
    const key = workspaceRateKey(this.settings.prefix, workspace);
    const argv = [this.#now() ?? '', limit.rate, limit.burst, n, bucketTtlMs(limit)];
    const wait = Number(await this.#run('rate', { keys: [key], argv }));
    if (wait === 0) return;
    if (n === 1) {
      if (this.#deniedUntil.size >= DENIED_WORKSPACES) this.#deniedUntil.clear();
      this.#deniedUntil.set(workspace, now + wait);
    }
    throw rateLimitError(limit, wait);
  }

  async #record(
    name: Parameters<typeof runScript>[1],
    rt: RuntimeRef,
    extra: (string | number)[],
  ): Promise<RequestRecord> {
    return decodeRecord((await this.#run(name, runtimeArgs(this.#call(rt), extra))) as Flat);
  }

  /**
   * Puts the runtime in its sweep bucket before a create, so the sweeper enforces the
   * new request's deadlines. Skipped while this instance's own touch is recent: the
   * bucket entry cannot be dropped within IDLE_GRACE_MS of it (both measured as elapsed
   * time, so this node's clock need not agree with Redis's).
   */
  async #touch(rt: RuntimeRef, tag: string): Promise<void> {
    const local = this.#now() ?? Date.now();
    const last = this.#touched.get(tag);
    if (last !== undefined && local - last < TOUCH_CACHE_MS) return;
    const key = sweepBucketKey(this.settings.prefix, sweepBucketOf(rt));
    await this.#run('touch_runtime', { keys: [key], argv: [tag, this.#now() ?? ''] });
    this.#touched.set(tag, local);
  }

  /**
   * Lists the runtime in its workspace once a create succeeded (a refused one leaves no
   * trace). Only a listing: a failure here does not undo or fail the create.
   */
  async #known(rt: RuntimeRef, tag: string): Promise<void> {
    if (this.#listed.has(tag)) return;
    const key = workspaceRuntimesKey(this.settings.prefix, rt.workspace);
    try {
      await this.#redis.zadd(key, 'NX', this.#now() ?? Date.now(), rt.runtime);
      this.#listed.add(tag);
    } catch {
      // listed on the next create, or when its daemon connects
    }
  }

  #items(
    bodies: CreateRequestBody[],
    createdBy: string,
    trace: TraceContext | undefined,
  ): CreateItem[] {
    const now = this.#now() ?? Date.now();
    return bodies.map((b) => ({
      id: newRequestId(now),
      kind: b.kind,
      payload: JSON.stringify(b.payload ?? null),
      priority: b.priority ?? 0,
      max_attempts: b.max_attempts ?? 1,
      pending_timeout_ms: b.pending_timeout_ms ?? this.settings.pendingTimeoutMs,
      lease_ms: b.lease_ms ?? this.settings.leaseMs,
      created_by: createdBy,
      ordering_key: b.ordering_key ?? '',
      traceparent: trace?.traceparent ?? '',
      tracestate: trace?.tracestate ?? '',
    }));
  }

  async #insert(
    rt: RuntimeRef,
    bodies: CreateRequestBody[],
    createdBy: string,
    trace: TraceContext | undefined,
    idem?: { key: string; fingerprint: string; ttlMs: number },
  ): Promise<
    { created: true; records: RequestRecord[] } | { created: false; record: RequestRecord }
  > {
    // Validated before anything is written: a refused create leaves no trace at all.
    const valid = validateBodies(bodies);
    await this.#admit(rt.workspace, valid.length);
    const call = this.#call(rt);
    await this.#touch(rt, call.keys.tag);
    const items = this.#items(valid, createdBy, trace);
    const maxPending = this.settings.maxPendingPerRuntime;
    const reply = (await this.#run('create', createArgs(call, rt, items, idem, maxPending))) as [
      number,
      number | Flat,
    ];
    if (reply[0] === 0) return { created: false, record: decodeRecord(reply[1] as Flat) };
    await this.#known(rt, call.keys.tag);
    const now = Number(reply[1]);
    return { created: true, records: items.map((it) => newRecord(rt, it, now)) };
  }

  async create(
    rt: RuntimeRef,
    body: CreateRequestBody,
    opts: CreateOptions,
  ): Promise<CreateResult> {
    const idem =
      opts.idempotencyKey === undefined
        ? undefined
        : {
            key: opts.idempotencyKey,
            fingerprint: bodyFingerprint(body),
            ttlMs: this.settings.idempotencyTtlMs,
          };
    const out = await this.#insert(rt, [body], opts.createdBy, opts.trace, idem);
    return out.created
      ? { request: out.records[0] as RequestRecord, created: true }
      : { request: out.record, created: false };
  }

  async createBatch(
    rt: RuntimeRef,
    bodies: CreateRequestBody[],
    opts: { createdBy: string; trace?: TraceContext },
  ): Promise<RequestRecord[]> {
    const out = await this.#insert(rt, bodies, opts.createdBy, opts.trace);
    return out.created ? out.records : [out.record];
  }

  async get(rt: RuntimeRef, id: string): Promise<RequestRecord | null> {
    try {
      return await this.#record('get', rt, [id]);
    } catch (err) {
      if (isStoreError(err, 'not_found')) return null;
      throw err;
    }
  }

  async list(rt: RuntimeRef, opts: ListOptions): Promise<ListResult> {
    const reply = (await this.#run(
      'list',
      runtimeArgs(this.#call(rt), [
        opts.status ?? '',
        opts.limit,
        opts.cursor ?? '',
        LIST_BUDGET,
        opts.ordering_key ?? '',
      ]),
    )) as [string, ...Flat[]];
    const [cursor, ...records] = reply;
    return { requests: records.map(decodeRecord), next_cursor: cursor === '' ? null : cursor };
  }

  async claim(rt: RuntimeRef, opts: ClaimOptions): Promise<RequestRecord[]> {
    if (opts.max <= 0) return [];
    const reply = (await this.#run(
      'claim',
      runtimeArgs(this.#call(rt), [opts.max, opts.connectionId, opts.nodeId]),
    )) as Flat[];
    return reply.map(decodeRecord);
  }

  release(rt: RuntimeRef, id: string, epoch: number): Promise<RequestRecord> {
    return this.#record('release', rt, [id, epoch]);
  }

  renew(rt: RuntimeRef, id: string, epoch: number): Promise<RequestRecord> {
    return this.#record('renew', rt, [id, epoch]);
  }

  async report(rt: RuntimeRef, id: string, epoch: number, outcome: Outcome) {
    return (await this.reportAndClaim(rt, id, epoch, outcome)).record;
  }

  async reportAndClaim(
    rt: RuntimeRef,
    id: string,
    epoch: number,
    outcome: Outcome,
    next?: ClaimOptions,
  ): Promise<ReportResult> {
    const body =
      outcome.status === 'completed'
        ? JSON.stringify(outcome.result ?? null)
        : JSON.stringify(outcome.error);
    const claim = next && next.max > 0 ? [next.max, next.connectionId, next.nodeId] : [0, '', ''];
    const extra = [id, epoch, outcome.status, body, ...claim];
    const [record, claimed] = (await this.#run('report', runtimeArgs(this.#call(rt), extra))) as [
      Flat,
      Flat[],
    ];
    return { record: decodeRecord(record), claimed: claimed.map(decodeRecord) };
  }

  async appendOutput(
    rt: RuntimeRef,
    id: string,
    epoch: number,
    writes: OutputWrite[],
  ): Promise<OutputResult> {
    const { maxOutputChunks, maxOutputBytes } = this.settings;
    const extra: (string | number)[] = [id, epoch, maxOutputChunks, maxOutputBytes, writes.length];
    for (const w of writes) extra.push(w.seq, w.data);
    const [at, acked, refusal, offset, seq, count] = (await this.#run(
      'output',
      runtimeArgs(this.#call(rt), extra),
    )) as number[];
    // The stored chunks are seqs seq .. seq+count-1 of `writes`, in order.
    const bySeq = new Map<number, string>();
    for (const w of writes) if (!bySeq.has(w.seq)) bySeq.set(w.seq, w.data);
    const stored: StoredChunk[] = [];
    for (let i = 0; i < (count as number); i++) {
      stored.push({
        offset: (offset as number) + i,
        epoch: at as number,
        data: bySeq.get((seq as number) + i) as string,
      });
    }
    const result: OutputResult = { epoch: at as number, acked_seq: acked as number, stored };
    if (refusal) result.refused = refusal === -6 ? 'output_limit' : 'seq_gap';
    return result;
  }

  async readOutput(
    rt: RuntimeRef,
    id: string,
    opts: { after: number; limit: number },
  ): Promise<OutputRead | null> {
    let reply: [number, number, [string, string[]][]];
    try {
      reply = (await this.#run(
        'output_read',
        runtimeArgs(this.#call(rt), [id, opts.after, opts.limit]),
      )) as typeof reply;
    } catch (err) {
      if (isStoreError(err, 'not_found')) return null;
      throw err;
    }
    const [terminal, last, entries] = reply;
    const chunks = entries.map(([entryId, fields]) => ({
      offset: Number.parseInt(entryId, 10),
      epoch: Number(fields[1]),
      data: fields[3] as string,
    }));
    const next_after = chunks.at(-1)?.offset ?? opts.after;
    return { chunks, next_after, done: terminal === 1 && next_after >= last };
  }

  cancel(rt: RuntimeRef, id: string, reason = 'cancelled by client'): Promise<RequestRecord> {
    return this.#record('cancel', rt, [id, reason]);
  }

  async retry(rt: RuntimeRef, id: string, opts: { createdBy: string }): Promise<RequestRecord> {
    await this.#admit(rt.workspace, 1);
    const call = this.#call(rt);
    await this.#touch(rt, call.keys.tag);
    const newId = newRequestId(call.now ?? Date.now());
    const argv = [id, newId, opts.createdBy, this.settings.maxPendingPerRuntime];
    const reply = await this.#run('retry', runtimeArgs(call, argv));
    await this.#known(rt, call.keys.tag);
    return decodeRecord(reply as Flat);
  }

  async expire(rt: RuntimeRef): Promise<ExpireResult> {
    const out: ExpireResult = {
      timedOut: [],
      requeued: [],
      purged: 0,
      staleConnections: 0,
      live: 0,
      retained: 0,
      pending: 0,
      claimable: 0,
      oldestPendingAt: null,
      connections: 0,
    };
    const started = performance.now();
    for (;;) {
      const reply = (await this.#run('expire', runtimeArgs(this.#call(rt), [EXPIRE_BATCH]))) as [
        string[],
        string[],
        ...number[],
      ];
      const [
        timedOut,
        requeued,
        purged,
        stale,
        live,
        retained,
        more,
        pending,
        present,
        oldest,
        claimable,
      ] = reply as [
        string[],
        string[],
        number,
        number,
        number,
        number,
        number,
        number,
        number,
        number,
        number,
      ];
      out.timedOut.push(...timedOut);
      out.requeued.push(...requeued);
      out.purged += purged;
      out.staleConnections += stale;
      out.live = live;
      out.retained = retained;
      out.pending = pending;
      out.claimable = claimable;
      out.connections = present;
      out.oldestPendingAt = oldest > 0 ? oldest : null;
      if (more !== 1 || performance.now() - started >= EXPIRE_BUDGET_MS) return out;
    }
  }

  upsertConnection(rt: RuntimeRef, conn: ConnectionInfo, ttlMs: number): Promise<void> {
    return this.upsertConnections(rt, [conn], ttlMs);
  }

  async upsertConnections(rt: RuntimeRef, conns: ConnectionInfo[], ttlMs: number) {
    if (conns.length === 0) return;
    const pairs = conns.flatMap((c) => [c.connection_id, JSON.stringify(c)]);
    const now = Number(
      await this.#run('presence', runtimeArgs(this.#call(rt), ['upsert', '', ttlMs, ...pairs])),
    );
    await this.#seen(rt, now);
  }

  async removeConnection(rt: RuntimeRef, connectionId: string): Promise<void> {
    await this.#run('presence', runtimeArgs(this.#call(rt), ['remove', connectionId, 0]));
  }

  async recordHeartbeat(rt: RuntimeRef, ttlMs: number): Promise<void> {
    const now = Number(
      await this.#run('presence', runtimeArgs(this.#call(rt), ['heartbeat', '', ttlMs])),
    );
    await this.#seen(rt, now);
  }

  /**
   * Moves the runtime up in its workspace's list, at most once per SEEN_REFRESH_MS per
   * runtime from this store: the list is by last seen to within that, and a presence
   * refresh of an idle runtime costs no ZADD. (Its `last_seen_at` is the conns hash's
   * `~seen`, written by every presence call.)
   */
  async #seen(rt: RuntimeRef, now: number): Promise<void> {
    const tag = runtimeKeys(this.settings.prefix, rt).tag;
    const last = this.#seenAt.get(tag);
    if (last !== undefined && now - last < SEEN_REFRESH_MS && now >= last) return;
    try {
      await this.#redis.zadd(
        workspaceRuntimesKey(this.settings.prefix, rt.workspace),
        now,
        rt.runtime,
      );
    } catch (err) {
      throw unavailable(err);
    }
    if (this.#seenAt.size >= SEEN_CACHE_SIZE) this.#seenAt.clear();
    this.#seenAt.set(tag, now);
  }

  async #info(rt: RuntimeRef): Promise<{ info: RuntimeInfo; retained: number; known: boolean }> {
    const [now, pending, running, flat, retained] = (await this.#run(
      'runtime_info',
      runtimeArgs(this.#call(rt), [EXPIRE_BATCH]),
    )) as [number, number, number, Flat, number];
    const connections: ConnectionPresence[] = [];
    let httpExpiresAt: number | null = null;
    let lastSeenAt: number | null = null;
    for (let i = 0; i < flat.length; i += 2) {
      const field = flat[i] as string;
      const value = flat[i + 1] as string;
      if (field === '~seen') lastSeenAt = Number(value);
      else if (field === '~http')
        httpExpiresAt = (JSON.parse(value) as { expires_at: number }).expires_at;
      else connections.push(JSON.parse(value) as ConnectionPresence);
    }
    const info = runtimeInfo({
      id: rt.runtime,
      now: Number(now),
      connections,
      httpExpiresAt,
      lastSeenAt,
      pending,
      running,
    });
    const known = flat.length > 0 || pending + running + retained > 0;
    return { info, retained, known };
  }

  async getRuntime(rt: RuntimeRef): Promise<RuntimeInfo | null> {
    const { info, known } = await this.#info(rt);
    if (known) return info;
    let score: string | null;
    try {
      score = await this.#redis.zscore(
        workspaceRuntimesKey(this.settings.prefix, rt.workspace),
        rt.runtime,
      );
    } catch (err) {
      throw unavailable(err);
    }
    return score === null ? null : info;
  }

  async listRuntimes(workspace: string): Promise<RuntimeInfo[]> {
    let names: string[];
    try {
      names = await this.#redis.zrange(
        workspaceRuntimesKey(this.settings.prefix, workspace),
        0,
        -1,
      );
    } catch (err) {
      throw unavailable(err);
    }
    names.sort();
    const infos = await Promise.all(names.map((runtime) => this.#info({ workspace, runtime })));
    return infos.map((i) => i.info);
  }

  async sweepCandidates(bucket: number): Promise<RuntimeRef[]> {
    try {
      const tags = await this.#redis.zrange(sweepBucketKey(this.settings.prefix, bucket), 0, -1);
      return tags.map(parseRuntimeTag);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async pendingCount(rt: RuntimeRef): Promise<number> {
    try {
      return await this.#redis.zcard(runtimeKeys(this.settings.prefix, rt).pending);
    } catch (err) {
      throw unavailable(err);
    }
  }

  async forgetIfIdle(rt: RuntimeRef): Promise<boolean> {
    const { info, retained } = await this.#info(rt);
    if (info.pending + info.running + retained > 0) return false;
    const key = sweepBucketKey(this.settings.prefix, sweepBucketOf(rt));
    const removed = await this.#run('forget_runtime', {
      keys: [key],
      argv: [runtimeKeys(this.settings.prefix, rt).tag, IDLE_GRACE_MS, this.#now() ?? ''],
    });
    return removed === 1;
  }

  async lockBucket(bucket: number, nodeId: string, ttlMs: number): Promise<boolean> {
    const key = sweepLockKey(this.settings.prefix, bucket);
    return (await this.#run('lock_bucket', { keys: [key], argv: [nodeId, ttlMs] })) === 1;
  }

  /**
   * One MULTI per workspace (its buckets share a slot): HINCRBY each count, HSET the
   * gauges, PEXPIRE. Workspaces go in parallel.
   */
  async recordStats(writes: StatsWrite[]): Promise<void> {
    const byWorkspace = new Map<string, StatsWrite[]>();
    for (const w of writes) {
      const list = byWorkspace.get(w.workspace);
      if (list) list.push(w);
      else byWorkspace.set(w.workspace, [w]);
    }
    try {
      await Promise.all(
        [...byWorkspace.values()].map((list) => {
          const tx = this.#redis.multi();
          for (const w of list) {
            const key = workspaceStatsKey(this.settings.prefix, w.workspace, w.minute);
            for (const [field, n] of Object.entries(w.counts)) tx.hincrby(key, field, n);
            if (Object.keys(w.gauges).length) tx.hset(key, w.gauges);
            tx.pexpire(key, STATS_TTL_MS);
          }
          return tx.exec().then((replies) => {
            const failed = replies?.find(([e]) => e !== null);
            if (!replies || failed) throw failed?.[0] ?? new Error('stats transaction aborted');
          });
        }),
      );
    } catch (err) {
      throw unavailable(err);
    }
  }

  async readStats(workspace: string, minutes: number[]): Promise<StatsBucket[]> {
    if (minutes.length === 0) return [];
    const pipe = this.#redis.pipeline();
    for (const m of minutes) pipe.hgetall(workspaceStatsKey(this.settings.prefix, workspace, m));
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await pipe.exec();
    } catch (err) {
      throw unavailable(err);
    }
    return minutes.map((_, i) => {
      const [err, hash] = replies?.[i] ?? [new Error('no reply'), null];
      if (err) throw unavailable(err);
      const out: StatsBucket = {};
      for (const [field, value] of Object.entries(hash as Record<string, string>)) {
        out[field] = Number(value);
      }
      return out;
    });
  }

  async ping(): Promise<void> {
    try {
      await this.#redis.ping();
    } catch (err) {
      throw unavailable(err);
    }
  }

  async close(): Promise<void> {
    if (!this.#owned) return;
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }
}

function unavailable(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StoreError('store_unavailable', `store unavailable: ${message}`, { cause: err });
}

function newRecord(rt: RuntimeRef, it: CreateItem, now: number): RequestRecord {
  return {
    id: it.id,
    workspace: rt.workspace,
    runtime: rt.runtime,
    kind: it.kind,
    payload: it.payload,
    status: 'pending',
    priority: it.priority,
    attempt: 0,
    max_attempts: it.max_attempts,
    epoch: 0,
    created_at: now,
    claimed_at: null,
    finished_at: null,
    pending_deadline: now + it.pending_timeout_ms,
    lease_expires_at: null,
    lease_ms: it.lease_ms,
    pending_timeout_ms: it.pending_timeout_ms,
    result: null,
    error: null,
    created_by: it.created_by,
    connection_id: null,
    node_id: null,
    retry_of: null,
    ordering_key: it.ordering_key === '' ? null : it.ordering_key,
    trace: it.traceparent === '' ? null : traceContext(it.traceparent, it.tracestate),
  };
}

function traceContext(traceparent: string, tracestate: string): TraceContext {
  return tracestate === '' ? { traceparent } : { traceparent, tracestate };
}
