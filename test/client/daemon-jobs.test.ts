/**
 * The daemon SDK's job table against a scripted hub: a local bound of `capacity` running
 * handlers whatever the hub pushes, capacity re-declared after a heartbeat's claims, an
 * attempt renewed from the moment it is received (and dropped, not run, once it is no
 * longer held), stale pushes ignored after the newer attempt is gone, and a bounded time
 * for every HTTP call.
 */
import { describe, expect, it } from 'vitest';
import type { connectDaemon } from '../../src/client/daemon.js';
import { stopAfterEach } from '../helpers/cleanup.js';
import { daemonRequest, heartbeatAnswer, scriptedHub, testDaemon, until } from './scripted-hub.js';

const { defer } = stopAfterEach();

const daemon = (url: string, opts: Partial<Parameters<typeof connectDaemon>[0]>) =>
  testDaemon(defer, url, 'jobs', opts);

function gate() {
  let open!: () => void;
  const promise = new Promise<void>((r) => {
    open = r;
  });
  return { promise, open };
}

/** Counts handlers running at once; `work` waits for the gate (ignoring its signal). */
function counted(wait: Promise<void>) {
  const c = { running: 0, most: 0, started: [] as string[] };
  const handlers = {
    work: async (_p: unknown, ctx: { id: string; epoch: number }) => {
      c.started.push(`${ctx.id}@${ctx.epoch}`);
      c.running++;
      c.most = Math.max(c.most, c.running);
      await wait;
      c.running--;
      return ctx.epoch;
    },
    quick: (_p: unknown, ctx: { id: string; epoch: number }) => {
      c.started.push(`${ctx.id}@${ctx.epoch}`);
      c.running++;
      c.most = Math.max(c.most, c.running);
      c.running--;
      return 'quick';
    },
  };
  return { c, handlers };
}

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe('the local capacity bound', () => {
  it('a push after lease_lost waits while the lost handler still runs (capacity 1)', async () => {
    const hub = await scriptedHub(defer);
    const release = gate();
    const { c, handlers } = counted(release.promise);
    const received: string[] = [];
    const { d } = await daemon(hub.url, { capacity: 1, handlers });
    d.on('request', (r) => received.push(r.id));
    await hub.next((f) => f.type === 'ready', 'ready');
    hub.request('a', 1);
    await until(() => c.running === 1, 'the first handler');
    hub.send({ type: 'lease_lost', id: 'a', epoch: 1 }); // the hub frees the slot at once
    hub.request('b', 1, 'quick');
    await until(() => received.includes('b'), 'b to arrive');
    await turns();
    expect(c.started).toEqual(['a@1']); // b waits for a's handler to return
    release.open();
    await hub.next((f) => f.type === 'result' && f.id === 'b', 'the result of b');
    expect(c.most).toBe(1);
    expect(hub.frames.filter((f) => f.type === 'result' && f.id === 'a')).toEqual([]);
  });

  it("a heartbeat's claims and the socket's pushes together never run past capacity", async () => {
    const hub = await scriptedHub(defer);
    hub.acceptUpgrades = false;
    let firstBeat: any = null;
    hub.onHttp = (call) => {
      if (call.path !== '/v1/daemon/heartbeat') return { status: 404, body: null };
      if (firstBeat === null) {
        firstBeat = call.body;
        return 'hang';
      }
      return heartbeatAnswer(call.body);
    };
    const release = gate();
    const { c, handlers } = counted(release.promise);
    const { d, reported } = await daemon(hub.url, {
      capacity: 2,
      socketFailuresBeforePolling: 1,
      handlers,
    });
    await until(() => firstBeat !== null, 'the first heartbeat');
    expect(firstBeat.max).toBe(2);
    // While that heartbeat is held, a socket comes up and declares the whole capacity.
    hub.acceptUpgrades = true;
    await hub.next((f) => f.type === 'ready', 'ready');
    hub.request('w1', 1);
    hub.request('w2', 1);
    await until(() => c.running === 2, 'the pushed handlers');
    // The held heartbeat now answers with its own claims: they are this daemon's too.
    hub.answerHeld(
      '/v1/daemon/heartbeat',
      heartbeatAnswer(firstBeat, [daemonRequest('h1', 1), daemonRequest('h2', 1)]),
    );
    await until(() => d.inFlight === 4, 'four attempts held');
    // Capacity is declared again, net of what runs: nothing more for this socket.
    const readies = () => hub.frames.filter((f) => f.type === 'ready').map((f) => f.capacity);
    await until(() => readies().length >= 2, 'a second ready');
    expect(readies()).toEqual([2, 0]);
    await turns();
    expect(c.running).toBe(2);
    release.open();
    await until(() => reported.length === 4, 'four reports');
    expect(c.most).toBe(2);
    expect(reported.every((r) => r.accepted)).toBe(true);
  });
});

describe('an attempt waiting for an older handler of the same id', () => {
  it('is renewed from the moment it is received, and runs once the older one returns', async () => {
    const hub = await scriptedHub(defer, 300);
    const release = gate();
    const { c, handlers } = counted(release.promise);
    await daemon(hub.url, { capacity: 2, handlers });
    await hub.next((f) => f.type === 'ready', 'ready');
    hub.request('r1', 1);
    await until(() => c.running === 1, 'the first attempt');
    hub.request('r1', 2);
    const renewsOf2 = () => hub.frames.filter((f) => f.type === 'renew' && f.epoch === 2).length;
    await until(() => renewsOf2() >= 2, 'renewals of the waiting attempt');
    expect(c.started).toEqual(['r1@1']);
    release.open();
    const result = await hub.next((f) => f.type === 'result', 'a result');
    expect(result).toMatchObject({ id: 'r1', epoch: 2, status: 'completed', result: 2 });
    expect(c.started).toEqual(['r1@1', 'r1@2']);
  });

  it('does not start once its lease is known to have lapsed (renewals unanswered)', async () => {
    const hub = await scriptedHub(defer, 300);
    hub.onRenew = (f) =>
      f.epoch === 2
        ? null
        : { type: 'renewed', id: f.id, epoch: f.epoch, lease_expires_at: new Date().toISOString() };
    const release = gate();
    const { c, handlers } = counted(release.promise);
    const { d } = await daemon(hub.url, { capacity: 2, handlers });
    await hub.next((f) => f.type === 'ready', 'ready');
    hub.request('r1', 1);
    await until(() => c.running === 1, 'the first attempt');
    hub.request('r1', 2);
    // Renewed every lease/3 and never confirmed: after four of them the lease has lapsed.
    await until(
      () => hub.frames.filter((f) => f.type === 'renew' && f.epoch === 2).length >= 4,
      'four unanswered renewals',
    );
    release.open();
    await until(() => d.inFlight === 0, 'no attempt left');
    hub.request('r2', 1, 'quick');
    await hub.next((f) => f.type === 'result' && f.id === 'r2', 'the result of r2');
    expect(c.started).toEqual(['r1@1', 'r2@1']);
    expect(hub.frames.filter((f) => f.type === 'result' && f.id === 'r1')).toEqual([]);
  });

  it('over HTTP: its lease goes into the heartbeat, and a lease the hub says is lost never starts', async () => {
    const hub = await scriptedHub(defer);
    hub.acceptUpgrades = false;
    let beats = 0;
    const asked: { id: string; epoch: number }[][] = [];
    hub.onHttp = (call) => {
      if (call.path !== '/v1/daemon/heartbeat') return { status: 404, body: null };
      beats++;
      asked.push(call.body.leases);
      if (beats === 1) return heartbeatAnswer(call.body, [daemonRequest('r1', 1)]);
      if (beats === 2) return heartbeatAnswer(call.body, [daemonRequest('r1', 2)]);
      return heartbeatAnswer(call.body, [], [{ id: 'r1', epoch: 2 }]);
    };
    const release = gate();
    const { c, handlers } = counted(release.promise);
    const { d } = await daemon(hub.url, {
      capacity: 2,
      socketFailuresBeforePolling: 1,
      pollIntervalMs: 20,
      handlers,
    });
    await until(() => beats >= 4, 'two heartbeats after the second claim');
    expect(asked[2]).toContainEqual({ id: 'r1', epoch: 2 });
    release.open();
    await until(() => d.inFlight === 0, 'no attempt left');
    expect(c.started).toEqual(['r1@1']);
    expect(hub.calls.filter((x) => x.path.endsWith('/result'))).toEqual([]);
  });
});

describe('a stale push after the newer attempt finished', () => {
  it('is ignored: the older epoch never runs', async () => {
    const hub = await scriptedHub(defer);
    const { c, handlers } = counted(Promise.resolve());
    const { reported } = await daemon(hub.url, { capacity: 2, handlers });
    await hub.next((f) => f.type === 'ready', 'ready');
    hub.request('x', 2, 'quick');
    await until(() => reported.length === 1, 'the report of x@2');
    hub.request('x', 1, 'quick'); // delayed on an old, draining socket
    hub.request('y', 1, 'quick');
    await hub.next((f) => f.type === 'result' && f.id === 'y', 'the result of y');
    expect(c.started).toEqual(['x@2', 'y@1']);
    expect(hub.frames.filter((f) => f.type === 'result' && f.id === 'x' && f.epoch === 1)).toEqual(
      [],
    );
  });
});

describe('HTTP calls on a path that never answers', () => {
  it('time out after httpTimeoutMs and are retried: polling goes on and the report lands', async () => {
    const hub = await scriptedHub(defer);
    hub.acceptUpgrades = false;
    let beats = 0;
    let results = 0;
    hub.onHttp = (call) => {
      if (call.path === '/v1/daemon/heartbeat') {
        beats++;
        if (beats === 1) return 'hang';
        return heartbeatAnswer(call.body, beats === 2 ? [daemonRequest('r1', 1, 'quick')] : []);
      }
      if (call.path.endsWith('/result')) {
        results++;
        if (results === 1) return 'hang';
        return { status: 200, body: { request: {} } };
      }
      return { status: 404, body: null };
    };
    const errors: Error[] = [];
    const { c, handlers } = counted(Promise.resolve());
    const { d, reported } = await daemon(hub.url, {
      socketFailuresBeforePolling: 1,
      pollIntervalMs: 20,
      httpTimeoutMs: 200,
      handlers,
    });
    d.on('error', (e) => errors.push(e));
    await until(() => reported.length === 1, 'the report, after one hung heartbeat and result');
    expect(reported[0]).toMatchObject({ id: 'r1', epoch: 1, accepted: true });
    expect(c.started).toEqual(['r1@1']);
    expect(results).toBe(2);
    expect(errors.some((e) => e.name === 'TimeoutError')).toBe(true);
  });
});
