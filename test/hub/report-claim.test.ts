/**
 * A socket's result claims the slot it frees in the same script (report.lua with a
 * claim), as BullMQ's moveToFinished fetches the next job: a busy daemon is fed without
 * a claim call after each result, and an idle queue costs no empty claim. Counted on a
 * real redis-server by its own commandstats.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../stores/memory/store.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { api, clientToken, daemonToken, readyDaemon } from '../helpers/node.js';

const { defer, redis, node } = stopAfterEach();

describe('report and claim over a daemon socket', () => {
  it('pushes the next request from the report, and claims nothing more after it', async () => {
    const server = await redis();
    const r = server.client();
    // No sweeps or presence rounds: only the calls of this test reach Redis.
    const n = await node({
      REDIS_URL: server.url,
      SWEEP_INTERVAL_MS: '60000',
      HEARTBEAT_INTERVAL_MS: '600000',
    });
    const client = await clientToken();
    const d = await readyDaemon(n, await daemonToken('laptop'), 1);
    defer(() => d.close());
    const create = async (payload: number) => {
      const res = await api(n, 'POST', '/v1/runtimes/laptop/requests', {
        token: client,
        body: { kind: 'k', payload },
      });
      expect(res.status).toBe(201);
      return res.body.id as string;
    };
    // Script runs, whether sent as EVALSHA or (a script's first time) as EVAL.
    const scripts = async () => {
      const info = await r.info('commandstats');
      const calls = (name: string) =>
        Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
      return calls('evalsha') + calls('eval');
    };
    const finish = async (id: string, epoch: number) => {
      d.send({ type: 'result', id, epoch, status: 'completed', result: null });
      expect(await d.next('ack')).toMatchObject({ id, epoch });
    };

    const first = await create(1);
    expect((await d.next('request')).request).toMatchObject({ id: first });
    const second = await create(2);
    const before = await scripts();
    await finish(first, 1);
    // The second request comes from the first one's report: one script, no claim call.
    expect((await d.next('request')).request).toMatchObject({ id: second, epoch: 1 });
    expect((await scripts()) - before).toBe(1);
    // The queue is empty now: the report's own claim saw so, and nothing claims after.
    await finish(second, 1);
    const third = await create(3);
    expect((await d.next('request')).request).toMatchObject({ id: third });
    // report (with its empty claim), then the create and the claim its wake-up made.
    expect((await scripts()) - before).toBe(4);
  });
});

describe('report and claim when the socket goes meanwhile', () => {
  it('gives back what the report claimed once the socket closed before the ack', async () => {
    const memoryStore = new MemoryStore();
    const n = await node({}, { memoryStore });
    const client = await clientToken();
    const d = await readyDaemon(n, await daemonToken('laptop'), 1);
    const rt = { workspace: 'acme', runtime: 'laptop' };
    const create = async () =>
      (await api(n, 'POST', '/v1/runtimes/laptop/requests', { token: client, body: { kind: 'k' } }))
        .body.id as string;
    const first = await create();
    expect((await d.next('request')).request).toMatchObject({ id: first });
    const second = await create();

    // The report runs (and claims the second for this socket); its answer waits until
    // the socket is gone.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reported!: () => void;
    const ran = new Promise<void>((resolve) => {
      reported = resolve;
    });
    const reportAndClaim = memoryStore.reportAndClaim.bind(memoryStore);
    memoryStore.reportAndClaim = async (...args) => {
      const out = await reportAndClaim(...args);
      reported();
      await gate;
      return out;
    };
    d.send({ type: 'result', id: first, epoch: 1, status: 'completed', result: null });
    await ran;
    expect(await memoryStore.get(rt, second)).toMatchObject({ status: 'running' });
    await d.close();
    await expect.poll(() => n.hub.dispatcher.connections.length).toBe(0);
    release();
    // Back in the queue at once, not after its 30 s lease.
    await expect.poll(async () => (await memoryStore.get(rt, second))?.status).toBe('pending');
  });
});
