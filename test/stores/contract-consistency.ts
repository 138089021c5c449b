/**
 * The store contract, part two: what the two stores must agree on beyond single
 * transitions (retention that keeps up with any completion rate, pages that end where
 * the data ends, runtime counts after lazy expiry, refused creates that leave no trace,
 * a hint for every transition). Run by memory.test.ts and redis.test.ts on every
 * backend, with the harness of contract.ts.
 */
import { describe, expect, it } from 'vitest';
import type { CreateRequestBody } from '../../protocol/index.js';
import type { RequestRecord, RuntimeRef } from '../../stores/domain.js';
import { HINT_RECORD_BYTES, parseHint } from '../../stores/hints.js';
import { runtimeKeys, sweepBucketOf } from '../../stores/keys.js';
import type { RequestStore, StoreSettings } from '../../stores/store.js';
import { contractStore, rejects, type StoreHarness } from './contract.js';

const RT: RuntimeRef = { workspace: 'acme', runtime: 'laptop' };
const BY = 'user-1';

/** What is left of a runtime's data in the backend itself (not through the store API). */
export interface RawCounts {
  pending: number;
  deadlines: number;
  leases: number;
  done: number;
  ids: number;
  /** How many of the given ids still have a record. */
  records: number;
}

export interface ConsistencyHarness extends StoreHarness {
  /** Reads the backend's own sets and records; absent where the store is opaque. */
  raw?(store: RequestStore, rt: RuntimeRef, ids: string[]): Promise<RawCounts>;
}

/** Runs `fn` over `items` with at most `width` calls in flight (pipelined, bounded). */
async function inWaves<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += width) {
    await Promise.all(items.slice(i, i + width).map(fn));
  }
}

export function storeConsistencyContract(h: ConsistencyHarness): void {
  const setup = async (settings: Partial<StoreSettings> = {}) => {
    const { store, clock, create, claim } = await contractStore(h, settings);
    const batch = async (n: number, body: Partial<CreateRequestBody> = {}) => {
      const made = [];
      for (let left = n; left > 0; left -= 500) {
        const bodies = Array.from({ length: Math.min(500, left) }, () => ({
          kind: 'bulk',
          ...body,
        }));
        made.push(...(await store.createBatch(RT, bodies, { createdBy: BY })));
      }
      return made;
    };
    return { store, clock, create, claim, batch };
  };

  describe('retention and expiry keep up with any rate', () => {
    it('purges 2,000 terminal records of one runtime, and their index entries, in one sweep', async () => {
      const { store, clock, claim, batch } = await setup({ retentionMs: 10_000 });
      const made = await batch(2_000);
      const claimed = await claim(2_000);
      expect(claimed).toHaveLength(2_000);
      await inWaves(claimed, 200, (r) =>
        store.report(RT, r.id, r.epoch, { status: 'completed', result: null }),
      );
      clock.advance(10_000);
      const swept = await store.expire(RT);
      expect(swept).toMatchObject({ purged: 2_000, retained: 0, live: 0 });
      const ids = made.map((r) => r.id);
      if (h.raw) {
        expect(await h.raw(store, RT, ids)).toEqual({
          pending: 0,
          deadlines: 0,
          leases: 0,
          done: 0,
          ids: 0,
          records: 0,
        });
      }
      expect(await store.get(RT, ids[0]!)).toBeNull();
      expect(await store.get(RT, ids.at(-1)!)).toBeNull();
      expect(await store.list(RT, { limit: 10 })).toEqual({ requests: [], next_cursor: null });
      expect((await store.expire(RT)).purged).toBe(0);
    });

    it('times out 1,200 pending requests past their deadline in one sweep', async () => {
      const { store, clock, batch } = await setup();
      const made = await batch(1_200, { pending_timeout_ms: 1_000 });
      clock.advance(1_000);
      const swept = await store.expire(RT);
      expect(swept.timedOut.sort()).toEqual(made.map((r) => r.id).sort());
      expect(swept).toMatchObject({ live: 0, retained: 1_200 });
      expect(await store.getRuntime(RT)).toMatchObject({ pending: 0, running: 0 });
    });
  });

  describe('listing ends where the data ends', () => {
    it('gives no cursor when the last page is exactly full', async () => {
      const { store, create, clock } = await setup();
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        ids.push((await create({ payload: i })).id);
        clock.advance(1);
      }
      const first = await store.list(RT, { limit: 3 });
      expect(first.requests.map((r) => r.id)).toEqual([ids[5], ids[4], ids[3]]);
      expect(first.next_cursor).not.toBeNull();
      const last = await store.list(RT, { limit: 3, cursor: first.next_cursor ?? undefined });
      expect(last.requests.map((r) => r.id)).toEqual([ids[2], ids[1], ids[0]]);
      expect(last.next_cursor).toBeNull();
      expect((await store.list(RT, { limit: 6 })).next_cursor).toBeNull();
    });

    it('gives no cursor when only non-matching records follow a full filtered page', async () => {
      const { store, create, claim, clock } = await setup();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        ids.push((await create({ payload: i })).id);
        clock.advance(1);
      }
      await claim(2); // the two oldest run; the three newest stay pending
      const pending = await store.list(RT, { status: 'pending', limit: 3 });
      expect(pending.requests.map((r) => r.id)).toEqual([ids[4], ids[3], ids[2]]);
      expect(pending.next_cursor).toBeNull();
      const running = await store.list(RT, { status: 'running', limit: 2 });
      expect(running.requests.map((r) => r.id)).toEqual([ids[1], ids[0]]);
      expect(running.next_cursor).toBeNull();
    });
  });

  describe('runtime counts', () => {
    it('counts neither pending requests past their deadline nor lapsed leases', async () => {
      const { store, create, claim, clock } = await setup({ leaseMs: 1_000 });
      const lapses = await create({ priority: 9, max_attempts: 1 });
      const requeues = await create({ priority: 9, max_attempts: 2 });
      expect((await claim(2)).map((r) => r.id).sort()).toEqual([lapses.id, requeues.id].sort());
      await create({ pending_timeout_ms: 1_000 });
      await create({ pending_timeout_ms: 1_000 });
      await create({ pending_timeout_ms: 60_000 });
      expect(await store.getRuntime(RT)).toMatchObject({ pending: 3, running: 2 });
      clock.advance(1_000);
      // Due now: two pending deadlines and one lease (timeouts), one lease (requeue).
      expect(await store.getRuntime(RT)).toMatchObject({ pending: 2, running: 0 });
      expect(await store.listRuntimes('acme')).toEqual([
        expect.objectContaining({ id: 'laptop', pending: 2, running: 0 }),
      ]);
      expect((await store.get(RT, lapses.id))?.status).toBe('timeout');
      expect((await store.get(RT, requeues.id))?.status).toBe('pending');
    });
  });

  describe('refused creates', () => {
    it('leave no trace: the runtime stays unknown, unlisted and off the sweep list', async () => {
      const { store } = await setup();
      const ghost: RuntimeRef = { workspace: 'acme', runtime: 'ghost' };
      const good = { kind: 'k' };
      const bad = { kind: 'k', priority: 42 } as CreateRequestBody;
      await rejects(store.create(ghost, bad, { createdBy: BY }), 'invalid_request');
      await rejects(
        store.create(ghost, bad, { createdBy: BY, idempotencyKey: 'i-1' }),
        'invalid_request',
      );
      await rejects(store.createBatch(ghost, [good, bad], { createdBy: BY }), 'invalid_request');
      await rejects(store.createBatch(ghost, [], { createdBy: BY }), 'invalid_request');
      expect(await store.getRuntime(ghost)).toBeNull();
      expect((await store.listRuntimes('acme')).map((r) => r.id)).not.toContain('ghost');
      expect(await store.sweepCandidates(sweepBucketOf(ghost))).not.toContainEqual(ghost);
      expect(await store.list(ghost, { limit: 10 })).toEqual({ requests: [], next_cursor: null });
      // The key was not taken by the refused create.
      const made = await store.create(ghost, good, { createdBy: BY, idempotencyKey: 'i-1' });
      expect(made.created).toBe(true);
      expect(await store.getRuntime(ghost)).toMatchObject({ id: 'ghost', pending: 1 });
    });
  });

  describe('hints', () => {
    it('publishes an update for every status change and a wake-up for new pending work', async () => {
      const { store, create, claim, clock } = await setup({ leaseMs: 1_000 });
      const keys = runtimeKeys(store.settings.prefix, RT);
      const wake = await h.listen(store, keys.wake);
      const updates = await h.listen(store, keys.updates);
      const hint = (id: string, status: string, epoch: number) => ({ id, status, epoch });
      const expected: ReturnType<typeof hint>[] = [];
      let wakes = 0;

      const a = await create({ max_attempts: 2 }); // create: pending + wake
      expected.push(hint(a.id, 'pending', 0));
      wakes++;
      await claim(); // claim: running
      expected.push(hint(a.id, 'running', 1));
      await store.renew(RT, a.id, 1); // renew: no status change, no hint
      await store.release(RT, a.id, 1); // release: pending at epoch 2 + wake
      expected.push(hint(a.id, 'pending', 2));
      wakes++;
      await claim();
      expected.push(hint(a.id, 'running', 3));
      clock.advance(1_000);
      expect((await store.expire(RT)).requeued).toEqual([a.id]); // lease expiry: requeue + wake
      expected.push(hint(a.id, 'pending', 4));
      wakes++;
      await claim();
      expected.push(hint(a.id, 'running', 5));
      clock.advance(1_000);
      expect((await store.expire(RT)).timedOut).toEqual([a.id]); // attempts used: timeout
      expected.push(hint(a.id, 'timeout', 5));

      const b = await store.retry(RT, a.id, { createdBy: BY }); // retry: new pending + wake
      expected.push(hint(b.id, 'pending', 0));
      wakes++;
      await store.cancel(RT, b.id); // cancel of a pending one
      expected.push(hint(b.id, 'cancelled', 0));

      const c = await create({ pending_timeout_ms: 500 });
      expected.push(hint(c.id, 'pending', 0));
      wakes++;
      clock.advance(500);
      expect((await store.expire(RT)).timedOut).toEqual([c.id]); // pending deadline
      expected.push(hint(c.id, 'timeout', 0));

      const d = await create();
      expected.push(hint(d.id, 'pending', 0));
      wakes++;
      const [claimedD] = await claim();
      expected.push(hint(d.id, 'running', 1));
      await store.cancel(RT, d.id); // cancel of a running one
      expected.push(hint(d.id, 'cancelled', 1));
      await rejects(
        store.report(RT, d.id, claimedD!.epoch, { status: 'completed', result: 1 }),
        'already_terminal',
      ); // refused: no hint

      const e = await create();
      expected.push(hint(e.id, 'pending', 0));
      wakes++;
      await claim();
      expected.push(hint(e.id, 'running', 1));
      await store.report(RT, e.id, 1, { status: 'failed', error: { code: 'x', message: 'y' } });
      expected.push(hint(e.id, 'failed', 1));

      await expect.poll(() => updates.messages.length).toBe(expected.length);
      const bare = (m: string) => {
        const { id, status, epoch } = JSON.parse(m);
        return { id, status, epoch };
      };
      expect(updates.messages.map(bare)).toEqual(expected);
      // On Redis Cluster each channel's subscriber may sit on another node: its messages
      // arrive over the cluster bus on their own schedule.
      await expect.poll(() => wake.messages.length).toBe(wakes);
      await wake.stop();
      await updates.stop();
    });

    it('carries the record as the change left it, unless its values pass HINT_RECORD_BYTES', async () => {
      const { store, create, claim } = await setup();
      const updates = await h.listen(store, runtimeKeys(store.settings.prefix, RT).updates);
      const sent: RequestRecord[] = [];
      const a = await create();
      sent.push(a);
      const [running] = await claim();
      sent.push(running as RequestRecord);
      sent.push(await store.release(RT, a.id, 1));
      sent.push(...(await claim()));
      sent.push(await store.report(RT, a.id, 3, { status: 'completed', result: { ok: [1] } }));
      const b = await create();
      sent.push(b);
      sent.push(await store.cancel(RT, b.id, 'no longer needed'));
      sent.push(await store.retry(RT, b.id, { createdBy: BY }));
      const big = await create({ payload: 'x'.repeat(HINT_RECORD_BYTES) });

      await expect.poll(() => updates.messages.length).toBe(sent.length + 1);
      const hints = updates.messages.map((m) => parseHint(m));
      expect(hints.slice(0, -1).map((hint) => hint?.record)).toEqual(sent);
      expect(hints.at(-1)).toEqual({ id: big.id, status: 'pending', epoch: 0 });
      await updates.stop();
    });
  });
}
