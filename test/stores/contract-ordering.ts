/**
 * The store contract, part four: ordering keys. Requests of one runtime with one key run
 * one at a time in creation order (also across a lease expiry and redelivery); other keys
 * and keyless requests flow past a stalled key; cancelling the head promotes the next,
 * cancelling a held one removes it; priority orders the heads only; lines are listed in
 * order and leave nothing behind. Run by memory.test.ts and redis.test.ts on every
 * backend, with the harness of contract.ts.
 */
import { describe, expect, it } from 'vitest';
import type { CreateRequestBody } from '../../protocol/index.js';
import type { RequestRecord, RuntimeRef } from '../../stores/domain.js';
import { runtimeKeys } from '../../stores/keys.js';
import type { RequestStore, StoreSettings } from '../../stores/store.js';
import { contractStore, type StoreHarness } from './contract.js';

const RT: RuntimeRef = { workspace: 'acme', runtime: 'laptop' };
const BY = 'user-1';

export interface OrderingHarness extends StoreHarness {
  /** Whether the backend still holds a line key for `key` (Redis: EXISTS of the ZSET). */
  lineExists?(store: RequestStore, rt: RuntimeRef, key: string): Promise<boolean>;
}

const ids = (rs: readonly RequestRecord[]) => rs.map((r) => r.id);

export function storeOrderingContract(h: OrderingHarness): void {
  const setup = async (settings: Partial<StoreSettings> = {}) => {
    const s = await contractStore(h, settings);
    const { store } = s;
    const done = (r: RequestRecord) =>
      store.report(RT, r.id, r.epoch, { status: 'completed', result: r.id });
    const batch = (bodies: Partial<CreateRequestBody>[]) =>
      store.createBatch(
        RT,
        bodies.map((b) => ({ kind: 'job.run', ...b })),
        { createdBy: BY },
      );
    /** Every request of the line, through the list API, in pages of `limit`. */
    const line = async (key: string, limit = 500) => {
      const out: RequestRecord[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await store.list(RT, { ordering_key: key, limit, cursor });
        out.push(...page.requests);
        if (page.next_cursor === null) return out;
        cursor = page.next_cursor;
      }
    };
    return { ...s, done, batch, line };
  };

  describe('ordering keys', () => {
    it('records the key (null without one) and shows it in every read', async () => {
      const { store, create } = await setup();
      const keyed = await create({ ordering_key: 'user:42/cart-1' });
      const plain = await create();
      expect(keyed.ordering_key).toBe('user:42/cart-1');
      expect(plain.ordering_key).toBeNull();
      expect(await store.get(RT, keyed.id)).toEqual(keyed);
      expect(await store.get(RT, plain.id)).toEqual(plain);
    });

    it('claims one request of a key at a time, in creation order', async () => {
      const { create, claim, done } = await setup();
      const made = [];
      for (let i = 0; i < 4; i++) made.push(await create({ ordering_key: 'k' }));
      const seen: string[] = [];
      for (let i = 0; i < 4; i++) {
        const got = await claim(10);
        expect(got).toHaveLength(1);
        seen.push(got[0]!.id);
        // Nothing else of the key while its head runs.
        expect(await claim(10)).toEqual([]);
        await done(got[0]!);
      }
      expect(seen).toEqual(ids(made));
      expect(await claim(10)).toEqual([]);
    });

    it('never runs two requests of one key at once under 20 concurrent claimers', async () => {
      const { store, batch } = await setup();
      const claimers = [store];
      for (let i = 1; i < 20; i++) claimers.push(await h.peer(store));
      const keys = ['a', 'b', 'c', 'd', 'e'];
      const bodies = [];
      for (let i = 0; i < 40; i++) bodies.push({ ordering_key: keys[i % keys.length] });
      for (let i = 0; i < 20; i++) bodies.push({});
      const made = await batch(bodies);
      const keyOf = new Map(made.map((r) => [r.id, r.ordering_key]));
      const order = new Map<string, string[]>();
      let keyless = 0;
      let finished = 0;
      while (finished < made.length) {
        const rounds = await Promise.all(
          claimers.map((c, i) =>
            c.claim(RT, { connectionId: `conn-${i}`, nodeId: `node-${i}`, max: 3 }),
          ),
        );
        const claimed = rounds.flat();
        expect(claimed.length).toBeGreaterThan(0);
        const running = new Map<string, number>();
        for (const r of claimed) {
          const key = keyOf.get(r.id);
          if (key === null || key === undefined) {
            keyless++;
            continue;
          }
          running.set(key, (running.get(key) ?? 0) + 1);
          order.set(key, [...(order.get(key) ?? []), r.id]);
        }
        for (const n of running.values()) expect(n).toBe(1);
        // Each claimer reports what it claimed, all at once.
        await Promise.all(
          rounds.flatMap((got, i) =>
            got.map((r) =>
              (claimers[i] as RequestStore).report(RT, r.id, r.epoch, {
                status: 'completed',
                result: null,
              }),
            ),
          ),
        );
        finished += claimed.length;
      }
      expect(keyless).toBe(20);
      for (const key of keys) {
        expect(order.get(key)).toEqual(ids(made.filter((r) => r.ordering_key === key)));
      }
    });

    it('keeps a redelivered head first: nothing behind it overtakes it', async () => {
      const { store, create, claim, clock, done } = await setup({ leaseMs: 1_000 });
      const a = await create({ ordering_key: 'k', max_attempts: 2 });
      const b = await create({ ordering_key: 'k', max_attempts: 2 });
      const [first] = await claim(10);
      expect(first?.id).toBe(a.id);
      clock.advance(1_001); // lease lost: A requeued (epoch 2), still the head
      const again = await claim(10);
      expect(ids(again)).toEqual([a.id]);
      expect(again[0]).toMatchObject({ epoch: 3, attempt: 2 });
      expect(await claim(10)).toEqual([]);
      // A release (the node could not hand it over) keeps it the head too.
      await store.release(RT, a.id, 3);
      const third = await claim(10);
      expect(ids(third)).toEqual([a.id]);
      await done(third[0]!);
      expect(ids(await claim(10))).toEqual([b.id]);
    });

    it('promotes the next when the head times out with no attempts left', async () => {
      const { store, create, claim, clock } = await setup({ leaseMs: 1_000 });
      const a = await create({ ordering_key: 'k' });
      const b = await create({ ordering_key: 'k' });
      await claim(10);
      clock.advance(1_001);
      // The sweeper's transition settles the lapsed lease: A times out, B is the head.
      const swept = await store.expire(RT);
      expect(swept.timedOut).toEqual([a.id]);
      expect((await store.get(RT, a.id))?.error?.code).toBe('lease_expired');
      expect(ids(await claim(10))).toEqual([b.id]);
    });

    it('promotes the next when the head passes its pending deadline (lazily, at a claim)', async () => {
      const { create, claim, clock } = await setup();
      await create({ ordering_key: 'k', pending_timeout_ms: 1_000 });
      const b = await create({ ordering_key: 'k' });
      clock.advance(1_000);
      expect(ids(await claim(10))).toEqual([b.id]);
    });

    it('lets other keys and keyless requests flow past a stalled key', async () => {
      const { create, claim, done } = await setup();
      const a1 = await create({ ordering_key: 'a' });
      await create({ ordering_key: 'a' });
      await create({ ordering_key: 'a' });
      const [stalled] = await claim(1);
      expect(stalled?.id).toBe(a1.id);
      const others = [];
      for (let i = 0; i < 3; i++) {
        others.push(await create({ ordering_key: 'b' }));
        others.push(await create());
      }
      const flowed: string[] = [];
      for (;;) {
        const got = await claim(10);
        if (got.length === 0) break;
        flowed.push(...ids(got));
        for (const r of got) await done(r);
      }
      expect(new Set(flowed)).toEqual(new Set(ids(others)));
    });

    it('cancelling the head promotes the next at once, with a wake-up', async () => {
      const { store, create, claim } = await setup();
      const a = await create({ ordering_key: 'k' });
      const b = await create({ ordering_key: 'k' });
      const wake = await h.listen(store, runtimeKeys(store.settings.prefix, RT).wake);
      try {
        await store.cancel(RT, a.id);
        await expect.poll(() => wake.messages.length).toBeGreaterThanOrEqual(1);
      } finally {
        await wake.stop();
      }
      expect(ids(await claim(10))).toEqual([b.id]);
    });

    it('cancelling a running head promotes the next', async () => {
      const { store, create, claim } = await setup();
      const a = await create({ ordering_key: 'k' });
      const b = await create({ ordering_key: 'k' });
      await claim(10);
      expect((await store.cancel(RT, a.id)).status).toBe('cancelled');
      expect(ids(await claim(10))).toEqual([b.id]);
    });

    it('cancelling a waiting one removes it from the line and holds nothing else back', async () => {
      const { store, create, claim, done, line } = await setup();
      const a = await create({ ordering_key: 'k' });
      const b = await create({ ordering_key: 'k' });
      const c = await create({ ordering_key: 'k' });
      const [head] = await claim(10);
      await store.cancel(RT, b.id);
      expect(ids(await line('k'))).toEqual([a.id, c.id]);
      expect(await claim(10)).toEqual([]);
      await done(head!);
      expect(ids(await claim(10))).toEqual([c.id]);
    });

    it('a held request still times out by its pending deadline, and leaves the line', async () => {
      const { store, create, claim, clock, done, line } = await setup();
      const a = await create({ ordering_key: 'k' });
      const b = await create({ ordering_key: 'k', pending_timeout_ms: 500 });
      const c = await create({ ordering_key: 'k' });
      const [head] = await claim(10);
      clock.advance(500);
      const swept = await store.expire(RT);
      expect(swept.timedOut).toEqual([b.id]);
      expect(ids(await line('k'))).toEqual([a.id, c.id]);
      await done(head!);
      expect(ids(await claim(10))).toEqual([c.id]);
    });

    it('orders the heads by priority, never a line', async () => {
      const { create, claim, done } = await setup();
      const a = await create({ ordering_key: 'k', priority: 0 });
      const b = await create({ ordering_key: 'k', priority: 9 });
      const c = await create({ ordering_key: 'j', priority: 5 });
      const d = await create({ priority: 1 });
      const e = await create({ priority: 0 });
      // B (priority 9) waits behind A: only the heads A, C and the keyless compete.
      const first = await claim(10);
      expect(ids(first)).toEqual([c.id, d.id, a.id, e.id]);
      for (const r of first) await done(r);
      expect(ids(await claim(10))).toEqual([b.id]);
    });

    it('a promoted head takes its place among created requests of its priority', async () => {
      const { create, claim, clock, done } = await setup();
      const a = await create({ ordering_key: 'k', priority: 3 });
      clock.advance(1);
      const b = await create({ ordering_key: 'k', priority: 3 });
      clock.advance(1);
      const later = await create({ priority: 3 });
      const [head] = await claim(1);
      expect(head?.id).toBe(a.id);
      await done(head!);
      // B was created before `later`: it goes first once it is the head.
      expect(ids(await claim(10))).toEqual([b.id, later.id]);
    });

    it('a batch joins its lines in item order', async () => {
      const { batch, claim, done } = await setup();
      const made = await batch([
        { ordering_key: 'x' },
        { ordering_key: 'y' },
        { ordering_key: 'x' },
        { ordering_key: 'x' },
      ]);
      const seen: string[] = [];
      for (;;) {
        const got = await claim(10);
        if (got.length === 0) break;
        seen.push(...ids(got).filter((id) => id !== made[1]!.id));
        for (const r of got) await done(r);
      }
      expect(seen).toEqual([made[0]!.id, made[2]!.id, made[3]!.id]);
    });

    it('counts held requests as pending, not as claimable', async () => {
      const { store, create, claim } = await setup();
      for (let i = 0; i < 3; i++) await create({ ordering_key: 'k' });
      await create();
      expect((await store.getRuntime(RT))?.pending).toBe(4);
      // Only the head and the keyless one can be claimed (the sweeper re-wakes for those).
      expect(await store.expire(RT)).toMatchObject({ pending: 4, claimable: 2, live: 4 });
      await claim(10);
      expect(await store.getRuntime(RT)).toMatchObject({ pending: 2, running: 2 });
      expect(await store.expire(RT)).toMatchObject({ pending: 2, claimable: 0, live: 4 });
    });

    it('lists one line in order, head first, in pages, and by status', async () => {
      const { store, create, claim, line } = await setup();
      const made = [];
      for (let i = 0; i < 7; i++) {
        made.push(await create({ ordering_key: 'k' }));
        await create({ ordering_key: 'other' });
        await create();
      }
      await claim(1);
      expect(ids(await line('k'))).toEqual(ids(made));
      expect(ids(await line('k', 2))).toEqual(ids(made));
      expect(ids(await line('k', 7))).toEqual(ids(made));
      const running = await store.list(RT, { ordering_key: 'k', status: 'running', limit: 10 });
      expect(ids(running.requests)).toEqual([made[0]!.id]);
      const held = await store.list(RT, { ordering_key: 'k', status: 'pending', limit: 3 });
      expect(ids(held.requests)).toEqual(ids(made.slice(1, 4)));
      expect(held.next_cursor).not.toBeNull();
      expect(await line('none')).toEqual([]);
    });

    it('a retry of a terminal keyed request goes to the back of its line', async () => {
      const { store, create, claim, done, line } = await setup();
      const a = await create({ ordering_key: 'k' });
      const b = await create({ ordering_key: 'k' });
      await store.cancel(RT, a.id);
      const again = await store.retry(RT, a.id, { createdBy: BY });
      expect(again.ordering_key).toBe('k');
      expect(ids(await line('k'))).toEqual([b.id, again.id]);
      const [head] = await claim(10);
      expect(head?.id).toBe(b.id);
      expect(await claim(10)).toEqual([]);
      await done(head!);
      expect(ids(await claim(10))).toEqual([again.id]);
    });

    it('leaves no line behind once its requests are done and past retention', async () => {
      const { store, create, claim, clock, done, line } = await setup({ retentionMs: 1_000 });
      const made = [];
      for (let i = 0; i < 3; i++) made.push(await create({ ordering_key: 'gone' }));
      for (let i = 0; i < 3; i++) {
        const [r] = await claim(10);
        await done(r!);
      }
      expect(await line('gone')).toEqual([]);
      if (h.lineExists) expect(await h.lineExists(store, RT, 'gone')).toBe(false);
      clock.advance(1_001);
      const swept = await store.expire(RT);
      expect(swept.purged).toBe(3);
      for (const r of made) expect(await store.get(RT, r.id)).toBeNull();
      if (h.lineExists) expect(await h.lineExists(store, RT, 'gone')).toBe(false);
      // A new request of the key is the head of a fresh line.
      const next = await create({ ordering_key: 'gone' });
      expect(ids(await claim(10))).toEqual([next.id]);
    });
  });
}
