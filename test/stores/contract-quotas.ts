/**
 * The store contract, quotas (issue 13): MAX_PENDING_PER_RUNTIME enforced inside the
 * create (and retry) transition, so concurrent creates from several nodes can never take
 * a runtime past it; and CREATE_RATE_PER_WORKSPACE, a token bucket per workspace shared by
 * every node. Run by memory.test.ts and redis.test.ts on every backend.
 */
import { describe, expect, it } from 'vitest';
import type { RuntimeRef } from '../../stores/domain.js';
import { isStoreError, StoreError } from '../../stores/errors.js';
import { contractStore, rejects, type StoreHarness } from './contract.js';

const RT: RuntimeRef = { workspace: 'acme', runtime: 'laptop' };
const BY = 'user-1';
const body = { kind: 'job.run', payload: null };

/** The StoreError `p` rejects with (fails the test when it resolves). */
async function refusal(p: Promise<unknown>): Promise<StoreError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  return err as StoreError;
}

export function storeQuotaContract(h: StoreHarness): void {
  describe('pending limit (MAX_PENDING_PER_RUNTIME)', () => {
    it('refuses the create past the limit, and a batch that would pass it whole', async () => {
      const { store, create, claim } = await contractStore(h, { maxPendingPerRuntime: 3 });
      await create();
      await store.createBatch(RT, [body, body], { createdBy: BY });
      const err = await refusal(create());
      expect(err.code).toBe('limit_exceeded');
      expect(err.retryAfterMs).toBeGreaterThan(0);
      expect(await store.pendingCount(RT)).toBe(3);
      // Running requests do not count: one claimed makes room for one, not for two.
      await claim(1);
      await rejects(store.createBatch(RT, [body, body], { createdBy: BY }), 'limit_exceeded');
      expect(await store.pendingCount(RT)).toBe(2);
      await create();
      expect(await store.pendingCount(RT)).toBe(3);
      // Another runtime has its own count.
      await create({}, { workspace: 'acme', runtime: 'desktop' });
    });

    it('answers an idempotent replay at the limit, and counts a retry as a create', async () => {
      const { store, create, claim } = await contractStore(h, { maxPendingPerRuntime: 1 });
      const first = await store.create(RT, body, { createdBy: BY, idempotencyKey: 'k-1' });
      const again = await store.create(RT, body, { createdBy: BY, idempotencyKey: 'k-1' });
      expect(again).toMatchObject({ created: false, request: { id: first.request.id } });
      const [running] = await claim(1);
      await store.report(RT, (running as { id: string }).id, 1, {
        status: 'failed',
        error: { code: 'x', message: 'x' },
      });
      await create(); // pending 1: full
      await rejects(store.retry(RT, first.request.id, { createdBy: BY }), 'limit_exceeded');
    });

    it('holds under concurrent creates from several nodes: never past the limit', async () => {
      const { store } = await contractStore(h, { maxPendingPerRuntime: 50 });
      const peers = [store, await h.peer(store), await h.peer(store), await h.peer(store)];
      let accepted = 0;
      let refused = 0;
      await Promise.all(
        peers.flatMap((peer) =>
          Array.from({ length: 30 }, async (_, i) => {
            try {
              if (i % 3 === 0) {
                const batch = await peer.createBatch(RT, [body, body], { createdBy: BY });
                accepted += batch.length;
              } else {
                await peer.create(RT, body, { createdBy: BY });
                accepted += 1;
              }
            } catch (err) {
              if (!isStoreError(err, 'limit_exceeded')) throw err;
              refused += 1;
            }
          }),
        ),
      );
      expect(await store.pendingCount(RT)).toBe(accepted);
      expect(accepted).toBeLessThanOrEqual(50);
      expect(accepted).toBeGreaterThanOrEqual(49); // only a batch of 2 may not fit the last 1
      expect(refused).toBeGreaterThan(0);
    });
  });

  describe('create rate (CREATE_RATE_PER_WORKSPACE)', () => {
    it('lets a burst through, then one request per token, and says when the next is due', async () => {
      const { store, create, clock } = await contractStore(h, {
        createRate: { rate: 10, burst: 5 },
      });
      for (let i = 0; i < 5; i++) await create();
      const err = await refusal(create());
      expect(err.code).toBe('limit_exceeded');
      expect(err.retryAfterMs).toBe(100); // 10 per second: a token every 100 ms
      clock.advance(50);
      expect((await refusal(create())).retryAfterMs).toBe(50);
      clock.advance(50);
      await create();
      await rejects(create(), 'limit_exceeded');
      // A batch needs as many tokens as it has items (up to the burst).
      clock.advance(300);
      await rejects(
        store.createBatch(RT, [body, body, body, body], { createdBy: BY }),
        'limit_exceeded',
      );
      clock.advance(100);
      expect(await store.createBatch(RT, [body, body, body, body], { createdBy: BY })).toHaveLength(
        4,
      );
    });

    it('tells a route, without a store call, that a create would be refused until a token is due', async () => {
      const { store, create, clock } = await contractStore(h, {
        createRate: { rate: 10, burst: 1 },
      });
      expect(store.rateRefusal(RT.workspace)).toBeNull(); // nothing known: ask the store
      await create();
      await rejects(create(), 'limit_exceeded');
      const known = store.rateRefusal(RT.workspace);
      expect(known).toMatchObject({ code: 'limit_exceeded', retryAfterMs: 100 });
      expect(store.rateRefusal('globex')).toBeNull();
      clock.advance(100);
      expect(store.rateRefusal(RT.workspace)).toBeNull();
      await create();
    });

    it('is one bucket per workspace, shared by every node', async () => {
      const { store, clock } = await contractStore(h, { createRate: { rate: 1, burst: 4 } });
      const peer = await h.peer(store);
      const other: RuntimeRef = { workspace: 'acme', runtime: 'desktop' };
      await store.create(RT, body, { createdBy: BY });
      await peer.create(other, body, { createdBy: BY });
      await peer.createBatch(RT, [body, body], { createdBy: BY });
      await rejects(store.create(other, body, { createdBy: BY }), 'limit_exceeded');
      // Another workspace is not held back.
      await peer.create({ workspace: 'globex', runtime: 'laptop' }, body, { createdBy: BY });
      clock.advance(1_000);
      await store.create(other, body, { createdBy: BY });
    });

    it('lets a batch larger than the burst through from a full bucket, in debt after', async () => {
      const { store, clock } = await contractStore(h, { createRate: { rate: 2, burst: 2 } });
      const five = Array.from({ length: 5 }, () => body);
      expect(await store.createBatch(RT, five, { createdBy: BY })).toHaveLength(5);
      // 3 tokens owed, then 1 to have: 2 s at 2 per second.
      const err = await refusal(store.create(RT, body, { createdBy: BY }));
      expect(err.retryAfterMs).toBe(2_000);
      clock.advance(2_000);
      await store.create(RT, body, { createdBy: BY });
    });
  });
}
