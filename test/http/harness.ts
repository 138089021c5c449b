/**
 * The HTTP app in process: a stub HubApi over a real MemoryStore behind the hub's
 * instrumented wrapper (waitForTerminal is a plain get, heartbeat renews then claims),
 * tokens for two workspaces, and a `call` helper around hono's `app.request`.
 */
import { pino } from 'pino';
import { InstrumentedStore } from '../../hub/instrumented-store.js';
import { MemoryRelay } from '../../hub/relay.js';
import { RequestFollow } from '../../hub/request-follow.js';
import { StatsRecorder } from '../../hub/stats.js';
import { Auth } from '../../src/auth.js';
import { loadConfig } from '../../src/config.js';
import { type AppDeps, createApp } from '../../src/http/app.js';
import type { HubApi } from '../../src/http/hub-api.js';
import { type RequestRecord, type RuntimeRef, toDaemonRequest } from '../../stores/domain.js';
import { MemoryStore } from '../../stores/memory/store.js';
import type { Outcome } from '../../stores/store.js';

export const SECRET = 'test-secret-test-secret-test-secret-0123';
export const MAX_PAYLOAD_BYTES = 4096;

export class StubHub implements HubApi {
  draining = false;
  /** The new status of each transition the routes made, in order. */
  readonly noted: string[] = [];
  storeErrors = 0;
  /** The MemoryStore behind the hub's own wrapper, so counting is the hub's. */
  readonly store: InstrumentedStore;
  /** The hub's stats recorder over the same store (no timer: reads flush first). */
  readonly stats: StatsRecorder;
  readonly #relay: MemoryRelay;
  constructor(memory: MemoryStore) {
    this.#relay = new MemoryRelay(memory.bus);
    this.stats = new StatsRecorder({ store: memory, logger: pino({ level: 'silent' }) });
    this.store = new InstrumentedStore(
      memory,
      {
        transition: (status, n) => {
          for (let i = 0; i < n; i++) this.noted.push(status);
        },
        unavailable: () => {
          this.storeErrors++;
        },
      },
      this.stats,
    );
  }
  async workspaceStats(workspace: string) {
    await this.stats.flush();
    return this.stats.read(workspace);
  }
  followRequest(rt: RuntimeRef, id: string, after: number) {
    return RequestFollow.open(this.store, this.#relay, rt, id, after, 1 << 20);
  }
  waitForTerminal(rt: RuntimeRef, id: string): Promise<RequestRecord | null> {
    return this.store.get(rt, id);
  }
  async heartbeat(
    rt: RuntimeRef,
    daemonSub: string,
    body: { max: number; leases: { id: string; epoch: number }[] },
  ) {
    await this.store.recordHeartbeat(rt, 45_000);
    const leases = [];
    for (const { id, epoch } of body.leases) {
      try {
        const r = await this.store.renew(rt, id, epoch);
        const at = new Date(r.lease_expires_at ?? 0).toISOString();
        leases.push({ id, epoch, ok: true, lease_expires_at: at });
      } catch {
        leases.push({ id, epoch, ok: false, lease_expires_at: null });
      }
    }
    const claimed = await this.store.claim(rt, {
      connectionId: `http:${daemonSub}`,
      nodeId: 'test-node',
      max: body.max,
    });
    return {
      requests: claimed.map((r) => toDaemonRequest(r)),
      leases,
      heartbeat_interval_ms: 15_000,
    };
  }
  report(rt: RuntimeRef, id: string, epoch: number, outcome: Outcome): Promise<RequestRecord> {
    return this.store.report(rt, id, epoch, outcome);
  }
  renew(rt: RuntimeRef, id: string, epoch: number): Promise<RequestRecord> {
    return this.store.renew(rt, id, epoch);
  }
}

export interface Harness {
  app: ReturnType<typeof createApp>;
  hub: StubHub;
  store: MemoryStore;
  auth: Auth;
  /** Client of workspace `acme`. */
  client: string;
  /** Client of workspace `other`. */
  otherClient: string;
  /** Daemon of `acme/laptop`. */
  daemon: string;
  call(
    method: string,
    path: string,
    opts?: {
      token?: string | null;
      body?: unknown;
      raw?: string;
      headers?: Record<string, string>;
    },
  ): Promise<{ status: number; body: any; headers: Headers }>;
}

export async function harness(
  env: Record<string, string> = {},
  deps: Partial<AppDeps> = {},
): Promise<Harness> {
  const config = loadConfig({
    HUB_SECRET: SECRET,
    MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES),
    ...env,
  });
  const store = new MemoryStore();
  const hub = new StubHub(store);
  const auth = new Auth(SECRET);
  const app = createApp({
    hub,
    auth,
    config,
    logger: pino({ level: 'silent' }),
    metricsText: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'up 1\n' }),
    ready: async () => ({ ok: true, checks: { store: true } }),
    ...deps,
  });
  const client = await auth.sign({ sub: 'alice', ws: 'acme', role: 'client' }, '1h');
  const otherClient = await auth.sign({ sub: 'mallory', ws: 'other', role: 'client' }, '1h');
  const daemon = await auth.sign({ sub: 'd1', ws: 'acme', role: 'daemon', rt: 'laptop' }, '1h');
  return {
    app,
    hub,
    store,
    auth,
    client,
    otherClient,
    daemon,
    async call(method, path, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      const token = opts.token === undefined ? client : opts.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let body: string | undefined = opts.raw;
      if (opts.body !== undefined) body = JSON.stringify(opts.body);
      if (body !== undefined) headers['content-type'] ??= 'application/json';
      const res = await app.request(path, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {}
      return { status: res.status, body: parsed, headers: res.headers };
    },
  };
}
