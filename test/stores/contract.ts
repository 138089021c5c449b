/**
 * The store contract: one suite, run against MemoryStore (memory.test.ts) and RedisStore
 * (redis.test.ts, on a private redis-server and on a Redis Cluster). Time is a stepped
 * clock, so every timeout is tested deterministically, not by sleeping.
 */
import { describe, expect, it } from 'vitest';
import type { CreateRequestBody, StoreErrorCode } from '../../protocol/index.js';
import { type RuntimeRef, toApiRequest } from '../../stores/domain.js';
import { StoreError } from '../../stores/errors.js';
import { sweepBucketOf } from '../../stores/keys.js';
import type { RequestStore, StoreSettings } from '../../stores/store.js';

export interface StoreHarness {
  /** A fresh, empty store (its own key prefix) with these settings. */
  open(settings: Partial<StoreSettings>): Promise<RequestStore>;
  /** Another instance over the same data (its own connection, for Redis). */
  peer(store: RequestStore): Promise<RequestStore>;
  /** Collects messages published on a channel. Resolves once subscribed. */
  listen(
    store: RequestStore,
    channel: string,
  ): Promise<{ messages: string[]; stop(): Promise<void> }>;
}

export class Clock {
  constructor(public t = 1_800_000_000_000) {}
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

const RT: RuntimeRef = { workspace: 'acme', runtime: 'laptop' };
const BY = 'user-1';

/** Asserts `p` rejects with a StoreError of `code`. */
export async function rejects(p: Promise<unknown>, code: StoreErrorCode): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  expect((err as StoreError).code).toBe(code);
}

/** A fresh store on a stepped clock, with create and claim shorthands for the tests. */
export async function contractStore(
  h: Pick<StoreHarness, 'open'>,
  settings: Partial<StoreSettings> = {},
) {
  const clock = new Clock();
  const store = await h.open({
    pendingTimeoutMs: 60_000,
    leaseMs: 30_000,
    retentionMs: 3_600_000,
    ...settings,
    clock: clock.now,
  });
  const create = async (body: Partial<CreateRequestBody> = {}, rt = RT) =>
    (await store.create(rt, { kind: 'job.run', payload: { n: 1 }, ...body }, { createdBy: BY }))
      .request;
  const claim = (max = 1, rt = RT, connectionId = 'conn-1') =>
    store.claim(rt, { connectionId, nodeId: 'node-1', max });
  return { store, clock, create, claim };
}

export function storeContract(h: StoreHarness): void {
  const setup = (settings: Partial<StoreSettings> = {}) => contractStore(h, settings);

  describe('round trip', () => {
    it('keeps every field through create, claim, complete and read back', async () => {
      const { store, clock, create, claim } = await setup();
      const t0 = clock.t;
      const payload = { text: 'héllo', nested: { list: [1, 2.5, null, true] } };
      const created = await create({
        kind: 'skills.list',
        payload,
        priority: 7,
        max_attempts: 3,
        pending_timeout_ms: 5_000,
        lease_ms: 2_000,
      });
      expect(toApiRequest(created)).toMatchObject({
        workspace_id: 'acme',
        runtime_id: 'laptop',
        kind: 'skills.list',
        payload,
        status: 'pending',
        priority: 7,
        attempt: 0,
        max_attempts: 3,
        epoch: 0,
        created_by: BY,
        created_at: new Date(t0).toISOString(),
        pending_deadline: new Date(t0 + 5_000).toISOString(),
        claimed_at: null,
        lease_expires_at: null,
      });
      expect(await store.get(RT, created.id)).toEqual(created);

      clock.advance(10);
      const [claimed] = await claim();
      expect(claimed).toMatchObject({
        id: created.id,
        status: 'running',
        attempt: 1,
        epoch: 1,
        claimed_at: t0 + 10,
        lease_expires_at: t0 + 10 + 2_000,
        connection_id: 'conn-1',
        node_id: 'node-1',
        pending_deadline: null,
      });

      clock.advance(10);
      const done = await store.report(RT, created.id, 1, {
        status: 'completed',
        result: { ok: [1, 'two'] },
      });
      const read = await store.get(RT, created.id);
      expect(read).toEqual(done);
      expect(toApiRequest(read!)).toMatchObject({
        status: 'completed',
        payload,
        result: { ok: [1, 'two'] },
        error: null,
        priority: 7,
        attempt: 1,
        epoch: 1,
        max_attempts: 3,
        created_by: BY,
        created_at: new Date(t0).toISOString(),
        claimed_at: new Date(t0 + 10).toISOString(),
        finished_at: new Date(t0 + 20).toISOString(),
        lease_expires_at: null,
      });
    });

    it('stores a missing payload as null and applies the defaults', async () => {
      const { store, clock } = await setup({ pendingTimeoutMs: 1234, leaseMs: 4321 });
      const { request } = await store.create(RT, { kind: 'k' }, { createdBy: BY });
      expect(toApiRequest(request).payload).toBeNull();
      expect(request).toMatchObject({
        priority: 0,
        max_attempts: 1,
        pending_deadline: clock.t + 1234,
        lease_ms: 4321,
      });
    });
  });

  describe('trace context', () => {
    const trace = {
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      tracestate: 'a=1,b=2',
    };
    it("keeps a create's trace through claim, requeue and report; none when not given", async () => {
      const { store, clock, claim } = await setup();
      const { request } = await store.create(
        RT,
        { kind: 'k', max_attempts: 2, lease_ms: 1_000 },
        { createdBy: BY, trace },
      );
      const plain = await store.create(RT, { kind: 'k' }, { createdBy: BY });
      const only = { traceparent: trace.traceparent };
      const [batched] = await store.createBatch(RT, [{ kind: 'b' }], {
        createdBy: BY,
        trace: only,
      });
      expect([request.trace, plain.request.trace, batched?.trace]).toEqual([trace, null, only]);
      expect(toApiRequest(plain.request)).not.toHaveProperty('trace');
      expect(toApiRequest(request).trace).toEqual(trace);
      expect(await store.get(RT, request.id)).toEqual(request);
      expect((await store.get(RT, plain.request.id))?.trace).toBeNull();
      expect((await store.get(RT, batched?.id as string))?.trace).toEqual(only);

      const [first] = await claim(1);
      expect(first).toMatchObject({ id: request.id, trace });
      clock.advance(1_001);
      await store.expire(RT);
      const [again] = await claim(1);
      expect(again).toMatchObject({ id: request.id, epoch: 3, trace });
      const done = await store.report(RT, request.id, 3, { status: 'completed', result: 1 });
      expect(done.trace).toEqual(trace);
      // An idempotent repeat answers with the record as stored.
      const key = await store.create(
        RT,
        { kind: 'k' },
        { createdBy: BY, idempotencyKey: 'i', trace },
      );
      const repeat = await store.create(RT, { kind: 'k' }, { createdBy: BY, idempotencyKey: 'i' });
      expect(repeat).toMatchObject({ created: false, request: { id: key.request.id, trace } });
    });
  });

  describe('claim', () => {
    it('has exactly one winner among 20 instances, 200 times over', async () => {
      const { store, create } = await setup();
      const peers = [store];
      while (peers.length < 20) peers.push(await h.peer(store));
      const winners = new Map<string, number>();
      for (let round = 0; round < 200; round++) {
        const req = await create({ payload: { round } });
        const results = await Promise.all(
          peers.map((p, i) => p.claim(RT, { connectionId: `c${i}`, nodeId: `n${i}`, max: 1 })),
        );
        const won = results.flat();
        expect(won).toHaveLength(1);
        expect(won[0]?.id).toBe(req.id);
        winners.set(req.id, (winners.get(req.id) ?? 0) + 1);
      }
      expect(winners.size).toBe(200);
      expect([...winners.values()].every((n) => n === 1)).toBe(true);
      const running = await store.list(RT, { status: 'running', limit: 500 });
      expect(running.requests).toHaveLength(200);
      expect((await store.list(RT, { status: 'pending', limit: 500 })).requests).toHaveLength(0);
    });

    it('works across instances: A creates, B claims, C completes, A reads', async () => {
      const { store: a } = await setup();
      const b = await h.peer(a);
      const c = await h.peer(a);
      const { request } = await a.create(RT, { kind: 'x', payload: 'hi' }, { createdBy: BY });
      const [claimed] = await b.claim(RT, { connectionId: 'cb', nodeId: 'nb', max: 5 });
      expect(claimed?.id).toBe(request.id);
      await c.report(RT, request.id, claimed!.epoch, { status: 'completed', result: 'HI' });
      const read = await a.get(RT, request.id);
      expect(read?.status).toBe('completed');
      expect(read?.result).toBe('"HI"');
    });

    it('orders by priority, then FIFO within a priority', async () => {
      const { create, claim, clock } = await setup();
      const order: string[] = [];
      const made: Record<string, string> = {};
      for (const [name, priority] of [
        ['low-1', 0],
        ['high-1', 9],
        ['mid-1', 5],
        ['low-2', 0],
        ['high-2', 9],
        ['mid-2', 5],
      ] as const) {
        made[(await create({ priority, payload: name })).id] = name;
        clock.advance(1);
      }
      for (const r of await claim(10)) order.push(made[r.id]!);
      expect(order).toEqual(['high-1', 'high-2', 'mid-1', 'mid-2', 'low-1', 'low-2']);
    });

    it('claims at most max and nothing with max 0', async () => {
      const { create, claim } = await setup();
      for (let i = 0; i < 5; i++) await create();
      expect(await claim(0)).toHaveLength(0);
      expect(await claim(3)).toHaveLength(3);
      expect(await claim(3)).toHaveLength(2);
      expect(await claim(3)).toHaveLength(0);
    });
  });

  describe('pending count', () => {
    it('counts the pending queue of a runtime, and 0 for one never seen', async () => {
      const { store, create, claim } = await setup();
      expect(await store.pendingCount(RT)).toBe(0);
      await create();
      await create();
      expect(await store.pendingCount(RT)).toBe(2);
      await claim(1);
      expect(await store.pendingCount(RT)).toBe(1);
      expect(await store.pendingCount({ workspace: 'acme', runtime: 'never-seen' })).toBe(0);
    });
  });

  describe('report and claim', () => {
    const done = { status: 'completed', result: 1 } as const;
    const next = (max: number) => ({ connectionId: 'conn-2', nodeId: 'node-2', max });

    it('stores the result and claims the next pending for the reporter, in one call', async () => {
      const { store, create, claim } = await setup();
      const a = await create();
      const b = await create();
      const c = await create();
      const [held] = await claim(1);
      const out = await store.reportAndClaim(RT, a.id, held!.epoch, done, next(1));
      expect(out.record).toMatchObject({ id: a.id, status: 'completed', result: '1' });
      expect(out.claimed).toEqual([
        expect.objectContaining({
          id: b.id,
          status: 'running',
          epoch: 1,
          attempt: 1,
          connection_id: 'conn-2',
          node_id: 'node-2',
        }),
      ]);
      expect(await store.get(RT, b.id)).toEqual(out.claimed[0]);
      expect(await store.get(RT, c.id)).toMatchObject({ status: 'pending' });
    });

    it('claims nothing with max 0 or without next, and stops when the queue is empty', async () => {
      const { store, create, claim } = await setup();
      const ids = [(await create()).id, (await create()).id, (await create()).id];
      const held = await claim(3);
      const pending = await create();
      const epochOf = (id: string) => held.find((r) => r.id === id)!.epoch;
      expect((await store.reportAndClaim(RT, ids[0]!, epochOf(ids[0]!), done)).claimed).toEqual([]);
      const zero = await store.reportAndClaim(RT, ids[1]!, epochOf(ids[1]!), done, next(0));
      expect(zero.claimed).toEqual([]);
      expect(await store.get(RT, pending.id)).toMatchObject({ status: 'pending' });
      const more = await store.reportAndClaim(RT, ids[2]!, epochOf(ids[2]!), done, next(5));
      expect(more.claimed.map((r) => r.id)).toEqual([pending.id]);
    });

    it('claims nothing when the report is refused', async () => {
      const { store, create, claim } = await setup();
      const a = await create();
      const [held] = await claim(1);
      const waiting = await create();
      await rejects(store.reportAndClaim(RT, a.id, held!.epoch + 1, done, next(1)), 'lease_lost');
      await store.cancel(RT, a.id);
      await rejects(store.reportAndClaim(RT, a.id, held!.epoch, done, next(1)), 'already_terminal');
      expect(await store.get(RT, waiting.id)).toMatchObject({ status: 'pending', epoch: 0 });
    });
  });

  describe('fencing', () => {
    it('rejects a stale epoch and changes nothing', async () => {
      const { store, create, claim, clock } = await setup({ leaseMs: 1_000 });
      const req = await create({ max_attempts: 2 });
      const [first] = await claim();
      clock.advance(1_001); // lease lost: requeued, epoch 2
      const [second] = await claim(1, RT, 'conn-2');
      expect(second?.epoch).toBe(3);
      const before = await store.get(RT, req.id);
      await rejects(
        store.report(RT, req.id, first!.epoch, { status: 'completed', result: 'late' }),
        'lease_lost',
      );
      await rejects(store.renew(RT, req.id, first!.epoch), 'lease_lost');
      await rejects(store.release(RT, req.id, first!.epoch), 'lease_lost');
      expect(await store.get(RT, req.id)).toEqual(before);
    });

    it('accepts the same report again, rejects another status after acceptance', async () => {
      const { store, create, claim } = await setup();
      const req = await create();
      const [c] = await claim();
      const first = await store.report(RT, req.id, c!.epoch, { status: 'completed', result: 1 });
      const again = await store.report(RT, req.id, c!.epoch, { status: 'completed', result: 1 });
      expect(again).toEqual(first);
      await rejects(
        store.report(RT, req.id, c!.epoch, {
          status: 'failed',
          error: { code: 'x', message: 'y' },
        }),
        'already_terminal',
      );
      expect(await store.get(RT, req.id)).toEqual(first);
    });

    it('rejects a report for a pending request and for a missing one', async () => {
      const { store, create } = await setup();
      const req = await create();
      await rejects(store.report(RT, req.id, 0, { status: 'completed', result: 1 }), 'lease_lost');
      await rejects(store.report(RT, 'nope', 1, { status: 'completed', result: 1 }), 'not_found');
    });

    it('renews a lease only at the holding epoch', async () => {
      const { store, create, claim, clock } = await setup({ leaseMs: 1_000 });
      const req = await create();
      const [c] = await claim();
      clock.advance(900);
      const renewed = await store.renew(RT, req.id, c!.epoch);
      expect(renewed.lease_expires_at).toBe(clock.t + 1_000);
      clock.advance(900); // past the first lease, within the renewed one
      expect((await store.get(RT, req.id))?.status).toBe('running');
      await store.report(RT, req.id, c!.epoch, {
        status: 'failed',
        error: { code: 'e', message: 'm' },
      });
      expect((await store.get(RT, req.id))?.error).toEqual({ code: 'e', message: 'm' });
    });
  });

  describe('timeouts', () => {
    it('times out a pending request past its deadline, actively via expire', async () => {
      const { store, create, clock } = await setup();
      const req = await create({ pending_timeout_ms: 1_000 });
      clock.advance(999);
      expect((await store.expire(RT)).timedOut).toEqual([]);
      clock.advance(1);
      const swept = await store.expire(RT);
      expect(swept.timedOut).toEqual([req.id]);
      expect(swept.live).toBe(0);
      const read = await store.get(RT, req.id);
      expect(read).toMatchObject({ status: 'timeout', finished_at: clock.t });
      expect(read?.error?.code).toBe('pending_timeout');
    });

    it('times out a pending request lazily, on read, with no sweep', async () => {
      const { store, create, clock, claim } = await setup();
      const req = await create({ pending_timeout_ms: 1_000 });
      clock.advance(1_000);
      const read = await store.get(RT, req.id);
      expect(read?.status).toBe('timeout');
      expect(read?.error?.code).toBe('pending_timeout');
      expect(await claim()).toHaveLength(0);
    });

    it('never claims a request past its pending deadline', async () => {
      const { create, clock, claim, store } = await setup();
      const old = await create({ pending_timeout_ms: 500 });
      clock.advance(10);
      const fresh = await create({ pending_timeout_ms: 5_000 });
      clock.advance(500);
      const claimed = await claim(5);
      expect(claimed.map((r) => r.id)).toEqual([fresh.id]);
      expect((await store.get(RT, old.id))?.status).toBe('timeout');
    });

    it('requeues an expired lease at the front when attempts remain', async () => {
      const { store, create, claim, clock } = await setup({ leaseMs: 1_000 });
      const first = await create({ max_attempts: 2 });
      clock.advance(1);
      const second = await create({ max_attempts: 2 });
      const [c] = await claim();
      expect(c?.id).toBe(first.id);
      clock.advance(1_000);
      const swept = await store.expire(RT);
      expect(swept.requeued).toEqual([first.id]);
      const requeued = await store.get(RT, first.id);
      expect(requeued).toMatchObject({
        status: 'pending',
        epoch: 2,
        attempt: 1,
        connection_id: null,
        lease_expires_at: null,
        pending_deadline: clock.t + 60_000,
      });
      const [again] = await claim(1, RT, 'conn-2');
      expect(again).toMatchObject({ id: first.id, attempt: 2, epoch: 3, connection_id: 'conn-2' });
      expect((await claim())[0]?.id).toBe(second.id);
    });

    it('times out an expired lease when its attempts are used', async () => {
      const { store, create, claim, clock } = await setup({ leaseMs: 1_000 });
      const req = await create({ max_attempts: 2 });
      await claim();
      clock.advance(1_000);
      await store.expire(RT);
      await claim();
      clock.advance(1_000);
      const swept = await store.expire(RT);
      expect(swept.timedOut).toEqual([req.id]);
      const read = await store.get(RT, req.id);
      expect(read).toMatchObject({ status: 'timeout', attempt: 2 });
      expect(read?.error?.code).toBe('lease_expired');
    });

    it('applies an expired lease lazily on read', async () => {
      const { store, create, claim, clock } = await setup({ leaseMs: 1_000 });
      const req = await create();
      await claim();
      clock.advance(1_000);
      expect((await store.get(RT, req.id))?.status).toBe('timeout');
    });

    it('release puts the request back at the front and gives the attempt back', async () => {
      const { store, create, claim, clock } = await setup();
      const a = await create();
      clock.advance(1);
      const b = await create();
      const [c] = await claim();
      expect(c?.id).toBe(a.id);
      const released = await store.release(RT, a.id, c!.epoch);
      expect(released).toMatchObject({ status: 'pending', epoch: 2, attempt: 0 });
      const [next] = await claim();
      expect(next).toMatchObject({ id: a.id, epoch: 3, attempt: 1 });
      expect((await claim())[0]?.id).toBe(b.id);
      await rejects(store.release(RT, b.id, 0), 'lease_lost');
    });

    it('removes terminal records after retention', async () => {
      const { store, create, claim, clock } = await setup({ retentionMs: 10_000 });
      const req = await create();
      const [c] = await claim();
      await store.report(RT, req.id, c!.epoch, { status: 'completed', result: null });
      clock.advance(9_999);
      expect(await store.get(RT, req.id)).not.toBeNull();
      let swept = await store.expire(RT);
      expect(swept).toMatchObject({ purged: 0, retained: 1 });
      clock.advance(1);
      swept = await store.expire(RT);
      expect(swept).toMatchObject({ purged: 1, retained: 0, live: 0 });
      expect(await store.get(RT, req.id)).toBeNull();
      expect((await store.list(RT, { limit: 10 })).requests).toHaveLength(0);
    });
  });

  describe('cancel and retry', () => {
    it('cancels a pending request', async () => {
      const { store, create, claim } = await setup();
      const req = await create();
      const cancelled = await store.cancel(RT, req.id, 'no longer needed');
      expect(cancelled).toMatchObject({ status: 'cancelled' });
      expect(cancelled.error).toEqual({ code: 'cancelled', message: 'no longer needed' });
      expect(await claim()).toHaveLength(0);
    });

    it('cancels a running request and fences its later report', async () => {
      const { store, create, claim } = await setup();
      const req = await create();
      const [c] = await claim();
      expect((await store.cancel(RT, req.id)).status).toBe('cancelled');
      await rejects(
        store.report(RT, req.id, c!.epoch, { status: 'completed', result: 1 }),
        'already_terminal',
      );
      await rejects(store.renew(RT, req.id, c!.epoch), 'lease_lost');
      expect((await store.get(RT, req.id))?.status).toBe('cancelled');
    });

    it('refuses to cancel a terminal or missing request', async () => {
      const { store, create, claim } = await setup();
      const req = await create();
      const [c] = await claim();
      await store.report(RT, req.id, c!.epoch, { status: 'completed', result: 1 });
      await rejects(store.cancel(RT, req.id), 'already_terminal');
      await rejects(store.cancel(RT, 'missing'), 'not_found');
    });

    it('retries a failed request as a new pending one', async () => {
      const { store, create, claim } = await setup();
      const req = await create({ kind: 'flaky', payload: { x: 1 }, priority: 4, max_attempts: 3 });
      const [c] = await claim();
      await store.report(RT, req.id, c!.epoch, {
        status: 'failed',
        error: { code: 'boom', message: 'it broke' },
      });
      const retried = await store.retry(RT, req.id, { createdBy: 'user-2' });
      expect(retried.id).not.toBe(req.id);
      expect(retried).toMatchObject({
        kind: 'flaky',
        payload: '{"x":1}',
        priority: 4,
        max_attempts: 3,
        status: 'pending',
        attempt: 0,
        epoch: 0,
        created_by: 'user-2',
        retry_of: req.id,
      });
      expect((await claim())[0]?.id).toBe(retried.id);
      expect((await store.get(RT, req.id))?.status).toBe('failed');
    });

    it('retries timed-out and cancelled requests, not completed or live ones', async () => {
      const { store, create, claim, clock } = await setup();
      const timedOut = await create({ pending_timeout_ms: 10 });
      clock.advance(10);
      await store.expire(RT);
      expect((await store.retry(RT, timedOut.id, { createdBy: BY })).status).toBe('pending');
      const cancelled = await create();
      await store.cancel(RT, cancelled.id);
      expect((await store.retry(RT, cancelled.id, { createdBy: BY })).status).toBe('pending');
      const live = await create({ priority: 9 });
      await rejects(store.retry(RT, live.id, { createdBy: BY }), 'not_retryable');
      const [c] = await claim();
      expect(c?.id).toBe(live.id);
      await store.report(RT, live.id, c!.epoch, { status: 'completed', result: 1 });
      await rejects(store.retry(RT, live.id, { createdBy: BY }), 'not_retryable');
      await rejects(store.retry(RT, 'missing', { createdBy: BY }), 'not_found');
    });
  });

  describe('idempotency and batches', () => {
    it('returns the same request for the same key and body, conflicts on another body', async () => {
      const { store } = await setup();
      const body = { kind: 'pay', payload: { amount: 5, currency: 'EUR' } };
      const first = await store.create(RT, body, { createdBy: BY, idempotencyKey: 'k-1' });
      expect(first.created).toBe(true);
      const reordered = { kind: 'pay', payload: { currency: 'EUR', amount: 5 } };
      const second = await store.create(RT, reordered, { createdBy: BY, idempotencyKey: 'k-1' });
      expect(second.created).toBe(false);
      expect(second.request.id).toBe(first.request.id);
      await rejects(
        store.create(
          RT,
          { kind: 'pay', payload: { amount: 6 } },
          { createdBy: BY, idempotencyKey: 'k-1' },
        ),
        'idempotency_conflict',
      );
      const other = await store.create(RT, body, { createdBy: BY, idempotencyKey: 'k-2' });
      expect(other.request.id).not.toBe(first.request.id);
      const elsewhere = await store.create({ workspace: 'acme', runtime: 'desktop' }, body, {
        createdBy: BY,
        idempotencyKey: 'k-1',
      });
      expect(elsewhere.created).toBe(true);
    });

    it('creates a batch of 500 at once', async () => {
      const { store, claim } = await setup();
      const bodies = Array.from({ length: 500 }, (_, i) => ({ kind: 'bulk', payload: i }));
      const created = await store.createBatch(RT, bodies, { createdBy: BY });
      expect(created).toHaveLength(500);
      expect(new Set(created.map((r) => r.id)).size).toBe(500);
      const info = await store.getRuntime(RT);
      expect(info).toMatchObject({ id: 'laptop', pending: 500, running: 0 });
      expect((await store.listRuntimes('acme')).map((r) => r.id)).toEqual(['laptop']);
      expect(await store.sweepCandidates(sweepBucketOf(RT))).toContainEqual(RT);
      const claimed = await claim(500);
      expect(claimed.map((r) => JSON.parse(r.payload))).toEqual(bodies.map((b) => b.payload));
      expect(await store.getRuntime(RT)).toMatchObject({ pending: 0, running: 500 });
    });

    it('creates nothing from a batch with one invalid item', async () => {
      const { store } = await setup();
      const bodies: CreateRequestBody[] = Array.from({ length: 500 }, (_, i) => ({
        kind: 'bulk',
        payload: i,
      }));
      bodies[321] = { kind: 'bulk', priority: 42 };
      await rejects(store.createBatch(RT, bodies, { createdBy: BY }), 'invalid_request');
      await rejects(
        store.createBatch(RT, [...bodies.slice(0, 2), ...bodies], { createdBy: BY }),
        'invalid_request',
      );
      expect((await store.list(RT, { limit: 10 })).requests).toHaveLength(0);
      // Nothing at all: not even the runtime became known.
      expect(await store.getRuntime(RT)).toBeNull();
      expect((await store.listRuntimes('acme')).map((r) => r.id)).not.toContain('laptop');
    });
  });

  describe('isolation and listing', () => {
    it('keeps runtimes and workspaces apart', async () => {
      const { store, create, claim } = await setup();
      const other = { workspace: 'globex', runtime: 'laptop' };
      const sibling = { workspace: 'acme', runtime: 'desktop' };
      const mine = await create();
      const theirs = await create({}, other);
      expect(await store.get(other, mine.id)).toBeNull();
      expect(await store.get(sibling, mine.id)).toBeNull();
      await rejects(store.cancel(other, mine.id), 'not_found');
      await rejects(
        store.report(sibling, mine.id, 1, { status: 'completed', result: 1 }),
        'not_found',
      );
      expect(await claim(10, sibling)).toHaveLength(0);
      expect((await claim(10, other)).map((r) => r.id)).toEqual([theirs.id]);
      expect((await claim(10)).map((r) => r.id)).toEqual([mine.id]);
      expect((await store.listRuntimes('acme')).map((r) => r.id)).toEqual(['laptop']);
      expect((await store.listRuntimes('globex')).map((r) => r.id)).toEqual(['laptop']);
    });

    it('lists every running request, however many newer ones come after it', async () => {
      const { store, claim, clock } = await setup();
      const body = { kind: 'bulk' };
      await store.createBatch(RT, Array(3).fill(body), { createdBy: BY });
      const running = (await claim(3)).map((r) => r.id);
      clock.advance(1);
      for (let i = 0; i < 3; i++) {
        await store.createBatch(RT, Array(500).fill(body), { createdBy: BY });
      }
      const listed = await store.list(RT, { status: 'running', limit: 500 });
      expect(listed.requests.map((r) => r.id).sort()).toEqual([...running].sort());
      expect(listed.next_cursor).toBeNull();
      const firstTwo = await store.list(RT, { status: 'running', limit: 2 });
      expect(firstTwo.requests.map((r) => r.id)).toEqual([...running].sort().reverse().slice(0, 2));
      const rest = await store.list(RT, {
        status: 'running',
        limit: 2,
        cursor: firstTwo.next_cursor ?? undefined,
      });
      expect(rest.requests.map((r) => r.id)).toEqual([[...running].sort()[0]]);
    });

    it('lists newest first, by status, page by page', async () => {
      const { store, create, claim, clock } = await setup();
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        ids.push((await create({ payload: i })).id);
        clock.advance(1);
      }
      await claim(2); // the two oldest run
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page++) {
        const res = await store.list(RT, { limit: 3, cursor });
        seen.push(...res.requests.map((r) => r.id));
        if (!res.next_cursor) break;
        cursor = res.next_cursor;
      }
      expect(seen).toEqual([...ids].reverse());
      const running = await store.list(RT, { status: 'running', limit: 10 });
      expect(running.requests.map((r) => r.id)).toEqual([ids[1], ids[0]]);
      const pending = await store.list(RT, { status: 'pending', limit: 2 });
      expect(pending.requests.map((r) => r.id)).toEqual([ids[6], ids[5]]);
      expect(pending.next_cursor).not.toBeNull();
    });
  });

  describe('presence and sweeping', () => {
    it('tells the sweeper how much waits and how many daemons are connected', async () => {
      const { store, create, claim, clock } = await setup();
      await create();
      await create();
      await create();
      await claim(1);
      const conn = (id: string) => ({
        connection_id: id,
        node_id: 'node-a',
        capacity: 1,
        in_flight: 0,
        connected_at: clock.t,
      });
      await store.upsertConnections(RT, [conn('c-1'), conn('c-2')], 3_000);
      await store.recordHeartbeat(RT, 3_000); // an HTTP poller is no connection
      expect(await store.expire(RT)).toMatchObject({ pending: 2, live: 3, connections: 2 });
      clock.advance(3_000);
      expect(await store.expire(RT)).toMatchObject({ pending: 2, connections: 0 });
    });

    it('tells the sweeper when the oldest pending request was created, whatever its priority', async () => {
      const { store, create, claim, clock } = await setup({ leaseMs: 1_000 });
      expect(await store.expire(RT)).toMatchObject({ pending: 0, oldestPendingAt: null });
      const first = clock.t;
      const a = await create({ priority: 0, max_attempts: 2 });
      clock.advance(1_000);
      await create({ priority: 0 });
      clock.advance(1_000);
      const high = await create({ priority: 9 });
      clock.advance(1_000);
      const mid = await create({ priority: 5 });
      // The oldest sits in the lowest band, behind newer work of higher priorities.
      expect(await store.expire(RT)).toMatchObject({ pending: 4, oldestPendingAt: first });
      // Claimed by priority, then age: the next oldest counts.
      expect((await claim(3)).map((r) => r.id)).toEqual([high.id, mid.id, a.id]);
      expect(await store.expire(RT)).toMatchObject({ pending: 1, oldestPendingAt: first + 1_000 });
      // a's lease lapses: requeued at the front of its band, it counts from its creation.
      clock.advance(1_000);
      expect(await store.expire(RT)).toMatchObject({
        requeued: [a.id],
        pending: 2,
        oldestPendingAt: first,
      });
      await claim(2);
      expect(await store.expire(RT)).toMatchObject({ pending: 0, oldestPendingAt: null });
    });

    it('refreshes several connections of a runtime in one call', async () => {
      const { store, clock } = await setup();
      const conn = (id: string, inFlight: number) => ({
        connection_id: id,
        node_id: 'node-a',
        capacity: 2,
        in_flight: inFlight,
        connected_at: clock.t,
      });
      await store.upsertConnections(RT, [conn('c-1', 0), conn('c-2', 1)], 3_000);
      clock.advance(2_000);
      await store.upsertConnections(RT, [conn('c-2', 2)], 3_000);
      clock.advance(1_500);
      // c-1 lapsed (not refreshed); c-2's refresh moved its expiry and its in_flight.
      const info = await store.getRuntime(RT);
      expect(info?.connections.map((c) => [c.connection_id, c.in_flight])).toEqual([['c-2', 2]]);
      await store.upsertConnections(RT, [], 3_000); // nothing to do, and no error
    });

    it('reports connections, heartbeats and counts', async () => {
      const { store, create, claim, clock } = await setup();
      expect(await store.getRuntime(RT)).toBeNull();
      await create();
      await create();
      await claim();
      const t = clock.t;
      await store.upsertConnection(
        RT,
        { connection_id: 'c-1', node_id: 'node-a', capacity: 4, in_flight: 1, connected_at: t },
        3_000,
      );
      let info = await store.getRuntime(RT);
      expect(info).toMatchObject({
        id: 'laptop',
        online: true,
        pending: 1,
        running: 1,
        last_seen_at: new Date(t).toISOString(),
        connections: [
          {
            connection_id: 'c-1',
            node_id: 'node-a',
            capacity: 4,
            in_flight: 1,
            connected_at: new Date(t).toISOString(),
          },
        ],
      });
      clock.advance(3_000);
      info = await store.getRuntime(RT);
      expect(info?.online).toBe(false);
      expect(info?.connections).toEqual([]);
      expect((await store.expire(RT)).staleConnections).toBe(1);
      await store.recordHeartbeat(RT, 1_000);
      expect((await store.getRuntime(RT))?.online).toBe(true);
      clock.advance(1_000);
      expect((await store.getRuntime(RT))?.online).toBe(false);
      await store.upsertConnection(
        RT,
        {
          connection_id: 'c-2',
          node_id: 'node-b',
          capacity: 1,
          in_flight: 0,
          connected_at: clock.t,
        },
        3_000,
      );
      await store.removeConnection(RT, 'c-2');
      expect((await store.getRuntime(RT))?.online).toBe(false);
      const listed = await store.listRuntimes('acme');
      expect(listed.map((r) => r.id)).toEqual(['laptop']);
    });

    it('keeps a runtime in its sweep bucket while it has work, then forgets it', async () => {
      const { store, create, claim, clock } = await setup({ retentionMs: 1_000 });
      const bucket = sweepBucketOf(RT);
      const req = await create();
      expect(await store.sweepCandidates(bucket)).toContainEqual(RT);
      expect(await store.forgetIfIdle(RT)).toBe(false);
      const [c] = await claim();
      await store.report(RT, req.id, c!.epoch, { status: 'completed', result: 1 });
      expect(await store.forgetIfIdle(RT)).toBe(false); // retained
      clock.advance(1_000);
      await store.expire(RT);
      expect(await store.forgetIfIdle(RT)).toBe(false); // touched too recently
      clock.advance(600_000);
      expect(await store.forgetIfIdle(RT)).toBe(true);
      expect(await store.sweepCandidates(bucket)).not.toContainEqual(RT);
    });

    it('gives a sweep bucket lock to one node at a time', async () => {
      const { store } = await setup();
      const peer = await h.peer(store);
      expect(await store.lockBucket(3, 'node-a', 5_000)).toBe(true);
      expect(await peer.lockBucket(3, 'node-b', 5_000)).toBe(false);
      expect(await store.lockBucket(3, 'node-a', 5_000)).toBe(true);
      expect(await peer.lockBucket(4, 'node-b', 5_000)).toBe(true);
    });
  });
}
