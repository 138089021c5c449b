/**
 * The store contract, part three: output streams (DESIGN.md section 6). Offsets gap-free
 * across calls and attempts, the epoch fence, seq dedup and gaps, both limits, output
 * that lives exactly as long as its record, and the update hint of every write. Run by
 * memory.test.ts and redis.test.ts on every backend, with the harness of contract.ts.
 */
import { describe, expect, it } from 'vitest';
import type { RuntimeRef } from '../../stores/domain.js';
import { HINT_RECORD_BYTES, parseHint, type UpdateHint } from '../../stores/hints.js';
import { runtimeKeys } from '../../stores/keys.js';
import type { OutputResult, OutputWrite, RequestStore, StoreSettings } from '../../stores/store.js';
import { contractStore, rejects, type StoreHarness } from './contract.js';

const RT: RuntimeRef = { workspace: 'acme', runtime: 'laptop' };
const OTHER: RuntimeRef = { workspace: 'acme', runtime: 'desktop' };
const BY = 'user-1';

export interface OutputHarness extends StoreHarness {
  /**
   * The backend's own view of a request's output: the stream key's PTTL as Redis
   * answers it (-2 no such key, -1 no TTL, else ms left). Absent where the store is opaque.
   */
  outputKeyTtl?(store: RequestStore, rt: RuntimeRef, id: string): Promise<number>;
}

/** Chunk writes seq from..to, each chunk's value `value(seq)` as JSON text. */
function writes(from: number, to: number, value = (seq: number) => `chunk ${seq}`): OutputWrite[] {
  const out: OutputWrite[] = [];
  for (let seq = from; seq <= to; seq++) out.push({ seq, data: JSON.stringify(value(seq)) });
  return out;
}

const offsets = (r: { stored: { offset: number }[] } | { chunks: { offset: number }[] }) =>
  ('stored' in r ? r.stored : r.chunks).map((c) => c.offset);

/** Runs `fn` over `items` with at most `width` calls in flight. */
async function inWaves<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += width) {
    await Promise.all(items.slice(i, i + width).map(fn));
  }
}

export function storeOutputContract(h: OutputHarness): void {
  const setup = async (settings: Partial<StoreSettings> = {}) => {
    const s = await contractStore(h, settings);
    const { store, create, claim } = s;
    /** A request claimed now: running at epoch 1 (or the next epoch of a requeued one). */
    const running = async (body = {}) => {
      const made = await create(body);
      const [claimed] = await claim();
      expect(claimed?.id).toBe(made.id);
      return claimed!;
    };
    /** Every stored chunk, read in pages of `limit`. */
    const readAll = async (id: string, limit = 1000) => {
      const chunks = [];
      let after = 0;
      for (;;) {
        const page = await store.readOutput(RT, id, { after, limit });
        if (!page) throw new Error(`no output for ${id}`);
        chunks.push(...page.chunks);
        if (page.chunks.length === 0) return { chunks, done: page.done };
        after = page.next_after;
      }
    };
    return { ...s, running, readAll };
  };

  describe('output offsets and paging', () => {
    it('numbers chunks 1..N without gaps, in order, across calls and batches', async () => {
      const { store, running, readAll } = await setup();
      const r = await running();
      const values = [{ a: [1, 2.5, null, true] }, 'héllo ✓', null, 42, [1, 'two'], false];
      const data = values.map((v) => JSON.stringify(v));
      const one = await store.appendOutput(RT, r.id, r.epoch, [{ seq: 1, data: data[0]! }]);
      expect(one).toEqual({
        epoch: r.epoch,
        acked_seq: 1,
        stored: [{ offset: 1, epoch: r.epoch, data: data[0] }],
      });
      const three = await store.appendOutput(
        RT,
        r.id,
        r.epoch,
        [2, 3, 4].map((seq) => ({ seq, data: data[seq - 1]! })),
      );
      expect(three.refused).toBeUndefined();
      expect(three.acked_seq).toBe(4);
      expect(offsets(three)).toEqual([2, 3, 4]);
      const two = await store.appendOutput(
        RT,
        r.id,
        r.epoch,
        [5, 6].map((seq) => ({ seq, data: data[seq - 1]! })),
      );
      expect(offsets(two)).toEqual([5, 6]);
      const all = await readAll(r.id);
      expect(all.chunks).toEqual(data.map((d, i) => ({ offset: i + 1, epoch: r.epoch, data: d })));
      expect(all.chunks.map((c) => JSON.parse(c.data))).toEqual(values);
      expect(all.done).toBe(false);
    });

    it('pages with after and limit; done only once terminal and caught up', async () => {
      const { store, running, create } = await setup();
      const r = await running();
      await store.appendOutput(RT, r.id, r.epoch, writes(1, 10));
      const read = (after: number, limit: number) => store.readOutput(RT, r.id, { after, limit });

      const first = await read(0, 4);
      expect(offsets(first!)).toEqual([1, 2, 3, 4]);
      expect(first).toMatchObject({ next_after: 4, done: false });
      expect(first!.chunks[0]).toEqual({ offset: 1, epoch: r.epoch, data: '"chunk 1"' });
      const second = await read(4, 4);
      expect(offsets(second!)).toEqual([5, 6, 7, 8]);
      expect(second).toMatchObject({ next_after: 8, done: false });
      const last = await read(8, 4);
      expect(offsets(last!)).toEqual([9, 10]);
      expect(last).toMatchObject({ next_after: 10, done: false });
      // Caught up while running: nothing more yet, next_after stays, not done.
      expect(await read(10, 4)).toEqual({ chunks: [], next_after: 10, done: false });
      expect(offsets((await read(3, 2))!)).toEqual([4, 5]);

      await store.report(RT, r.id, r.epoch, { status: 'completed', result: null });
      expect(await read(10, 4)).toEqual({ chunks: [], next_after: 10, done: true });
      // Terminal but not caught up: not done until the page reaches the last chunk.
      expect(await read(8, 1)).toMatchObject({ next_after: 9, done: false });
      expect(await read(8, 2)).toMatchObject({ next_after: 10, done: true });
      expect(await read(0, 1000)).toMatchObject({ next_after: 10, done: true });
      expect((await read(0, 1000))!.chunks).toHaveLength(10);

      // No output at all: not done while pending, done once terminal.
      const quiet = await create();
      expect(await store.readOutput(RT, quiet.id, { after: 0, limit: 10 })).toEqual({
        chunks: [],
        next_after: 0,
        done: false,
      });
      await store.cancel(RT, quiet.id);
      expect(await store.readOutput(RT, quiet.id, { after: 0, limit: 10 })).toEqual({
        chunks: [],
        next_after: 0,
        done: true,
      });
    });
  });

  describe('output fencing', () => {
    it('refuses a write not running at that epoch (lease_lost) and stores nothing of it', async () => {
      const { store, create, claim, readAll } = await setup();
      const r = await create();
      await rejects(store.appendOutput(RT, r.id, 0, writes(1, 1)), 'lease_lost'); // pending
      await rejects(store.appendOutput(RT, r.id, 1, writes(1, 1)), 'lease_lost'); // pending
      const [claimed] = await claim();
      expect(claimed!.epoch).toBe(1);
      await rejects(store.appendOutput(RT, r.id, 0, writes(1, 2)), 'lease_lost'); // stale
      await rejects(store.appendOutput(RT, r.id, 2, writes(1, 2)), 'lease_lost'); // future
      expect((await readAll(r.id)).chunks).toEqual([]);
      const ok = await store.appendOutput(RT, r.id, 1, writes(1, 1));
      expect(offsets(ok)).toEqual([1]); // the refused writes took no seq and no offset
      await store.report(RT, r.id, 1, { status: 'completed', result: 'ok' });
      await rejects(store.appendOutput(RT, r.id, 1, writes(2, 3)), 'lease_lost'); // completed
      expect(await readAll(r.id)).toEqual({
        chunks: [{ offset: 1, epoch: 1, data: '"chunk 1"' }],
        done: true,
      });
      expect((await store.get(RT, r.id))?.status).toBe('completed');
    });

    it('answers not_found for an unknown id, and reads null for it and for another runtime', async () => {
      const { store, running } = await setup();
      await rejects(store.appendOutput(RT, 'req_nope', 1, writes(1, 1)), 'not_found');
      expect(await store.readOutput(RT, 'req_nope', { after: 0, limit: 10 })).toBeNull();
      const r = await running();
      await store.appendOutput(RT, r.id, r.epoch, writes(1, 2));
      // The id is this runtime's: another runtime neither reads nor writes it.
      expect(await store.readOutput(OTHER, r.id, { after: 0, limit: 10 })).toBeNull();
      await rejects(store.appendOutput(OTHER, r.id, r.epoch, writes(3, 3)), 'not_found');
      expect(offsets((await store.readOutput(RT, r.id, { after: 0, limit: 10 }))!)).toEqual([1, 2]);
    });
  });

  describe('output seq', () => {
    it('stores a resent seq once and acknowledges it again', async () => {
      const { store, running, readAll } = await setup();
      const r = await running();
      const first = await store.appendOutput(RT, r.id, r.epoch, writes(1, 2));
      expect(first.acked_seq).toBe(2);
      expect(offsets(first)).toEqual([1, 2]);
      // The same call again: acknowledged, nothing stored.
      expect(await store.appendOutput(RT, r.id, r.epoch, writes(1, 2))).toEqual({
        epoch: r.epoch,
        acked_seq: 2,
        stored: [],
      });
      // An empty call reports where the numbering stands.
      expect(await store.appendOutput(RT, r.id, r.epoch, [])).toEqual({
        epoch: r.epoch,
        acked_seq: 2,
        stored: [],
      });
      // Old, new and a duplicate inside the batch: each new seq once.
      const batch = [...writes(2, 3), ...writes(3, 4), ...writes(4, 4)];
      const mixed = await store.appendOutput(RT, r.id, r.epoch, batch);
      expect(mixed).toEqual({
        epoch: r.epoch,
        acked_seq: 4,
        stored: [
          { offset: 3, epoch: r.epoch, data: '"chunk 3"' },
          { offset: 4, epoch: r.epoch, data: '"chunk 4"' },
        ],
      });
      const all = await readAll(r.id);
      expect(all.chunks.map((c) => [c.offset, c.data])).toEqual([
        [1, '"chunk 1"'],
        [2, '"chunk 2"'],
        [3, '"chunk 3"'],
        [4, '"chunk 4"'],
      ]);
    });

    it('refuses a seq gap: the chunks before it are stored, nothing after', async () => {
      const { store, running, readAll } = await setup();
      const r = await running();
      const gap = await store.appendOutput(RT, r.id, r.epoch, [
        ...writes(1, 2),
        ...writes(4, 5),
        ...writes(3, 3),
      ]);
      expect(gap).toMatchObject({ epoch: r.epoch, acked_seq: 2, refused: 'seq_gap' });
      expect(offsets(gap)).toEqual([1, 2]);
      expect(offsets(await readAll(r.id))).toEqual([1, 2]);
      // The writer resends from the first unacked seq.
      const mended = await store.appendOutput(RT, r.id, r.epoch, writes(3, 5));
      expect(mended.refused).toBeUndefined();
      expect(mended.acked_seq).toBe(5);
      expect(offsets(mended)).toEqual([3, 4, 5]);
      expect((await readAll(r.id)).chunks.map((c) => c.data)).toEqual(
        writes(1, 5).map((w) => w.data),
      );

      // A first write that skips seq 1 stores nothing.
      const other = await running();
      expect(await store.appendOutput(RT, other.id, other.epoch, writes(2, 3))).toEqual({
        epoch: other.epoch,
        acked_seq: 0,
        stored: [],
        refused: 'seq_gap',
      });
      expect((await readAll(other.id)).chunks).toEqual([]);
    });
  });

  describe('output across a redelivery', () => {
    it('restarts seq at 1 in the new attempt and continues the offsets, with the new epoch', async () => {
      const { store, clock, running, claim, readAll } = await setup({ leaseMs: 1_000 });
      const r = await running({ max_attempts: 2 });
      expect(r.epoch).toBe(1);
      expect(offsets(await store.appendOutput(RT, r.id, 1, writes(1, 3)))).toEqual([1, 2, 3]);
      clock.advance(1_000);
      expect((await store.expire(RT)).requeued).toEqual([r.id]);
      await rejects(store.appendOutput(RT, r.id, 1, writes(4, 4)), 'lease_lost');
      const [again] = await claim();
      expect(again).toMatchObject({ id: r.id, epoch: 3 });
      await rejects(store.appendOutput(RT, r.id, 1, writes(4, 4)), 'lease_lost');
      // The new attempt numbers from 1 again; seq 4 would be a gap in it.
      const gap = await store.appendOutput(RT, r.id, 3, writes(4, 4));
      expect(gap).toEqual({ epoch: 3, acked_seq: 0, stored: [], refused: 'seq_gap' });
      const next = await store.appendOutput(
        RT,
        r.id,
        3,
        writes(1, 2, (s) => `retry ${s}`),
      );
      expect(next).toEqual({
        epoch: 3,
        acked_seq: 2,
        stored: [
          { offset: 4, epoch: 3, data: '"retry 1"' },
          { offset: 5, epoch: 3, data: '"retry 2"' },
        ],
      });
      // A resend of the new attempt's seq 1 is a duplicate in it, not a new chunk.
      expect((await store.appendOutput(RT, r.id, 3, writes(1, 1))).stored).toEqual([]);
      const all = await readAll(r.id);
      expect(all.chunks.map((c) => [c.offset, c.epoch, c.data])).toEqual([
        [1, 1, '"chunk 1"'],
        [2, 1, '"chunk 2"'],
        [3, 1, '"chunk 3"'],
        [4, 3, '"retry 1"'],
        [5, 3, '"retry 2"'],
      ]);
    });

    it('fences a write once the lease lapses, before any sweep', async () => {
      const { store, clock, running, readAll } = await setup({ leaseMs: 1_000 });
      const r = await running({ max_attempts: 2 });
      await store.appendOutput(RT, r.id, r.epoch, writes(1, 1));
      clock.advance(999);
      expect(offsets(await store.appendOutput(RT, r.id, r.epoch, writes(2, 2)))).toEqual([2]);
      clock.advance(1);
      await rejects(store.appendOutput(RT, r.id, r.epoch, writes(3, 3)), 'lease_lost');
      expect(await store.get(RT, r.id)).toMatchObject({ status: 'pending', epoch: 2 });
      expect(offsets(await readAll(r.id))).toEqual([1, 2]);
    });
  });

  describe('output limits', () => {
    it('refuses the chunk that would cross MAX_OUTPUT_CHUNKS, and the result still goes in', async () => {
      const { store, running, readAll } = await setup({ maxOutputChunks: 3 });
      const r = await running();
      const full = await store.appendOutput(RT, r.id, r.epoch, writes(1, 5));
      expect(full).toMatchObject({ acked_seq: 3, refused: 'output_limit' });
      expect(offsets(full)).toEqual([1, 2, 3]);
      expect(await store.appendOutput(RT, r.id, r.epoch, writes(4, 4))).toEqual({
        epoch: r.epoch,
        acked_seq: 3,
        stored: [],
        refused: 'output_limit',
      });
      // A duplicate is still acknowledged: it takes no room.
      expect(await store.appendOutput(RT, r.id, r.epoch, writes(3, 3))).toEqual({
        epoch: r.epoch,
        acked_seq: 3,
        stored: [],
      });
      const done = await store.report(RT, r.id, r.epoch, { status: 'completed', result: 'ok' });
      expect(done.status).toBe('completed');
      expect(await readAll(r.id)).toMatchObject({ done: true });
      expect(offsets(await readAll(r.id))).toEqual([1, 2, 3]);
    });

    it('counts MAX_OUTPUT_BYTES as the UTF-8 length of each chunk’s JSON text', async () => {
      const { store, running, readAll } = await setup({ maxOutputBytes: 20 });
      const r = await running();
      const wide = JSON.stringify('é'.repeat(8)); // 10 characters, 18 bytes
      expect(Buffer.byteLength(wide)).toBe(18);
      const put = (seq: number, data: string) =>
        store.appendOutput(RT, r.id, r.epoch, [{ seq, data }]);
      expect(offsets(await put(1, wide))).toEqual([1]);
      // 18 + 3 = 21 bytes (13 characters): over.
      expect(await put(2, '"a"')).toEqual({
        epoch: r.epoch,
        acked_seq: 1,
        stored: [],
        refused: 'output_limit',
      });
      expect(offsets(await put(2, '1'))).toEqual([2]); // 19 bytes
      expect(offsets(await put(3, '2'))).toEqual([3]); // 20 bytes: at the limit, allowed
      const over: OutputResult = await put(4, '3');
      expect(over).toMatchObject({ acked_seq: 3, stored: [], refused: 'output_limit' });
      const failed = await store.report(RT, r.id, r.epoch, {
        status: 'failed',
        error: { code: 'x', message: 'y' },
      });
      expect(failed.status).toBe('failed');
      const all = await readAll(r.id);
      expect(all).toEqual({
        chunks: [
          { offset: 1, epoch: r.epoch, data: wide },
          { offset: 2, epoch: r.epoch, data: '1' },
          { offset: 3, epoch: r.epoch, data: '2' },
        ],
        done: true,
      });
    });

    it('refuses a single chunk larger than the whole byte limit', async () => {
      const { store, running, readAll } = await setup({ maxOutputBytes: 100 });
      const r = await running();
      const big = await store.appendOutput(RT, r.id, r.epoch, [
        { seq: 1, data: JSON.stringify('x'.repeat(99)) },
      ]);
      expect(big).toEqual({ epoch: r.epoch, acked_seq: 0, stored: [], refused: 'output_limit' });
      expect((await readAll(r.id)).chunks).toEqual([]);
    });
  });

  describe('output lives as long as its record', () => {
    it('is gone with the record after retention, by a sweep or a lazy read', async () => {
      const { store, clock, running, readAll } = await setup({ retentionMs: 10_000 });
      const swept = await running();
      const lazy = await running();
      for (const r of [swept, lazy]) {
        await store.appendOutput(RT, r.id, r.epoch, writes(1, 2));
        if (h.outputKeyTtl) expect(await h.outputKeyTtl(store, RT, r.id)).toBe(-1);
        await store.report(RT, r.id, r.epoch, { status: 'completed', result: null });
        // Terminal: the stream now expires by itself with the record.
        if (h.outputKeyTtl) expect(await h.outputKeyTtl(store, RT, r.id)).toBeGreaterThan(0);
      }
      clock.advance(9_999);
      expect(offsets(await readAll(swept.id))).toEqual([1, 2]);
      clock.advance(1);
      expect(await store.readOutput(RT, lazy.id, { after: 0, limit: 10 })).toBeNull();
      expect((await store.expire(RT)).purged).toBe(1);
      expect(await store.readOutput(RT, swept.id, { after: 0, limit: 10 })).toBeNull();
      if (h.outputKeyTtl) {
        expect(await h.outputKeyTtl(store, RT, swept.id)).toBe(-2);
        expect(await h.outputKeyTtl(store, RT, lazy.id)).toBe(-2);
      }
    });

    it('purges 600 terminal records with output, and their streams, in one sweep', async () => {
      const { store, clock, claim } = await setup({ retentionMs: 10_000 });
      const made = [];
      for (const n of [300, 300]) {
        const bodies = Array.from({ length: n }, () => ({ kind: 'bulk' }));
        made.push(...(await store.createBatch(RT, bodies, { createdBy: BY })));
      }
      const claimed = await claim(600);
      expect(claimed).toHaveLength(600);
      await inWaves(claimed, 100, async (r) => {
        await store.appendOutput(RT, r.id, r.epoch, writes(1, 3));
        await store.report(RT, r.id, r.epoch, { status: 'completed', result: null });
      });
      const ids = made.map((r) => r.id);
      if (h.outputKeyTtl) {
        const ttls: number[] = [];
        await inWaves(ids, 100, async (id) => ttls.push(await h.outputKeyTtl!(store, RT, id)));
        expect(ttls.filter((t) => t > 0)).toHaveLength(600);
      }
      clock.advance(10_000);
      expect(await store.expire(RT)).toMatchObject({ purged: 600, retained: 0, live: 0 });
      const left: string[] = [];
      await inWaves(ids, 100, async (id) => {
        if ((await store.readOutput(RT, id, { after: 0, limit: 1 })) !== null) left.push(id);
        if (h.outputKeyTtl && (await h.outputKeyTtl(store, RT, id)) !== -2) left.push(id);
      });
      expect(left).toEqual([]);
    });
  });

  describe('output at the end of a request', () => {
    it('refuses writes after a cancel; what was stored stays readable, done', async () => {
      const { store, running, readAll } = await setup();
      const r = await running();
      await store.appendOutput(RT, r.id, r.epoch, writes(1, 2));
      await store.cancel(RT, r.id, 'enough');
      await rejects(store.appendOutput(RT, r.id, r.epoch, writes(3, 3)), 'lease_lost');
      await rejects(store.appendOutput(RT, r.id, r.epoch, writes(1, 2)), 'lease_lost');
      expect(await readAll(r.id)).toEqual({
        chunks: [
          { offset: 1, epoch: r.epoch, data: '"chunk 1"' },
          { offset: 2, epoch: r.epoch, data: '"chunk 2"' },
        ],
        done: true,
      });
      if (h.outputKeyTtl) expect(await h.outputKeyTtl(store, RT, r.id)).toBeGreaterThan(0);
    });

    it('refuses writes after a timeout (lease lapsed, attempts used); stored output stays, done', async () => {
      const { store, clock, running, readAll } = await setup({ leaseMs: 1_000 });
      const r = await running({ max_attempts: 1 });
      await store.appendOutput(RT, r.id, r.epoch, writes(1, 2));
      clock.advance(1_000);
      await rejects(store.appendOutput(RT, r.id, r.epoch, writes(3, 3)), 'lease_lost');
      expect((await store.get(RT, r.id))?.status).toBe('timeout');
      expect(await readAll(r.id)).toMatchObject({ done: true });
      expect(offsets(await readAll(r.id))).toEqual([1, 2]);
      if (h.outputKeyTtl) expect(await h.outputKeyTtl(store, RT, r.id)).toBeGreaterThan(0);
      // The same by the sweeper instead of a write.
      const swept = await running({ max_attempts: 1 });
      await store.appendOutput(RT, swept.id, swept.epoch, writes(1, 1));
      clock.advance(1_000);
      expect((await store.expire(RT)).timedOut).toEqual([swept.id]);
      await rejects(store.appendOutput(RT, swept.id, swept.epoch, writes(2, 2)), 'lease_lost');
      expect(await readAll(swept.id)).toMatchObject({ done: true });
      expect(offsets(await readAll(swept.id))).toEqual([1]);
    });
  });

  describe('output hints', () => {
    it('publishes one hint per write that stored something, with the data while it is small', async () => {
      const { store, running } = await setup({ maxOutputChunks: 8 });
      // Subscribed before the request exists: on a cluster a PUBLISH reaches the subscriber's
      // node over the cluster bus, so the create and claim hints of a request made before
      // subscribing can still arrive after it. Their hints come first and are skipped below.
      const updates = await h.listen(store, runtimeKeys(store.settings.prefix, RT).updates);
      const r = await running();
      const expected: UpdateHint[] = [];
      const out = (from: number, count: number, data?: unknown[]): UpdateHint => ({
        id: r.id,
        status: 'running',
        epoch: r.epoch,
        output: data ? { from, count, data } : { from, count },
      });
      const put = (ws: OutputWrite[]) => store.appendOutput(RT, r.id, r.epoch, ws);

      await put(writes(1, 2));
      expected.push(out(1, 2, ['chunk 1', 'chunk 2']));
      await put(writes(1, 2)); // all duplicates: no hint
      await put([]); // nothing: no hint
      await put([...writes(2, 3), ...writes(5, 5)]); // stores 3, then a gap
      expected.push(out(3, 1, ['chunk 3']));
      await put(writes(5, 5)); // a gap only: no hint
      await rejects(store.appendOutput(RT, r.id, r.epoch + 1, writes(4, 4)), 'lease_lost');
      const value = { nested: ['ünï', 1, null] };
      await put([{ seq: 4, data: JSON.stringify(value) }]);
      expected.push(out(4, 1, [value]));
      // Past HINT_RECORD_BYTES: the hint names the chunks but carries no data.
      const large = 'x'.repeat(HINT_RECORD_BYTES);
      await put([{ seq: 5, data: JSON.stringify(large) }]);
      expected.push(out(5, 1));
      // Counted in bytes: fewer characters than HINT_RECORD_BYTES, more bytes.
      const wide = 'é'.repeat(HINT_RECORD_BYTES / 2 + 10);
      expect(JSON.stringify(wide).length).toBeLessThan(HINT_RECORD_BYTES);
      await put([{ seq: 6, data: JSON.stringify(wide) }]);
      expected.push(out(6, 1));
      // Two chunks that fit only together in HINT_RECORD_BYTES... and two that do not.
      const half = 'y'.repeat(HINT_RECORD_BYTES / 2 - 4);
      await put(writes(7, 8, () => half));
      expected.push(out(7, 2, [half, half]));
      await put(writes(9, 9)); // over maxOutputChunks: refused, no hint
      // A state change last, so every hint before it has arrived when it has.
      await store.report(RT, r.id, r.epoch, { status: 'completed', result: null });

      const last = () => updates.messages.at(-1);
      await expect
        .poll(() => last() !== undefined && parseHint(last() as string, false)?.status)
        .toBe('completed');
      // The head alone for state hints (no record to compare); output hints with their data.
      const hints = updates.messages.map((m) => {
        const head = parseHint(m, false);
        return head?.output ? parseHint(m) : head;
      });
      const first = hints.findIndex((hint) => hint?.output !== undefined);
      expect(hints.slice(0, first).map((hint) => hint?.status)).toEqual(['pending', 'running']);
      expect(hints.at(-1)).toEqual({ id: r.id, status: 'completed', epoch: r.epoch });
      expect(hints.slice(first, -1)).toEqual(expected);
      await updates.stop();
    });
  });
}
