/**
 * The relay carries hints between nodes: Redis pub/sub in a cluster, the in-process bus
 * when embedded. Subscriptions are reference-counted per channel: the first listener
 * subscribes, the last one leaving unsubscribes. Every operation is bounded in time
 * (DESIGN.md section 7): nobody awaits a Redis reply directly; a channel is marked live
 * when its SUBSCRIBE is acknowledged on the current connection, and `subscribed()`
 * waits for that at most a bound. A dropped subscriber connection marks every channel
 * not live (an in-flight SUBSCRIBE of the old connection may never settle: ioredis drops
 * it without rejecting); on the next `ready` the relay subscribes every channel again
 * and then runs the `onReconnect` listeners, since hints sent meanwhile are gone. They
 * wait for the channels there at `ready` only (channels added later have their own
 * subscribe-then-read), and at most `RELAY_TIMEOUT_MS`: on a busy node some new
 * SUBSCRIBE is always in flight, and re-drains must not wait for a quiet moment.
 */
import type { Cluster, Redis } from 'ioredis';
import type { Bus } from '../stores/bus.js';

export type HintListener = (message: string) => void;

/** Longest a relay operation (subscribe, publish) may take before it counts as failed. */
export const RELAY_TIMEOUT_MS = 2_000;
/** How often channels whose SUBSCRIBE failed or timed out are tried again. */
const REPAIR_MS = 1_000;

export interface Relay {
  subscribe(channel: string, listener: HintListener): () => void;
  /**
   * Resolves true once the channel's subscription is live (Redis acknowledged it), so a
   * read made after it cannot miss a hint published in between; false when it is not
   * live within `timeoutMs` (the subscriber connection is down). Never rejects.
   */
  subscribed(channel: string, timeoutMs?: number): Promise<boolean>;
  publish(channel: string, message: string): Promise<void>;
  /** Returns the function that removes the listener. */
  onReconnect(listener: () => void): () => void;
  /** Whether the subscriber connection is up (readiness). */
  readonly connected: boolean;
  close(): Promise<void>;
}

interface Channel {
  listeners: Set<HintListener>;
  live: boolean;
  /** A SUBSCRIBE for it is on the wire (on the current connection). */
  attaching: boolean;
  /** `subscribed()` callers waiting for it to become live. */
  waiting: Set<() => void>;
}

/** Reference-counted listener sets and liveness; subclasses do the actual (un)subscribe. */
abstract class CountedRelay implements Relay {
  protected readonly channels = new Map<string, Channel>();
  protected readonly reconnectListeners = new Set<() => void>();
  abstract readonly connected: boolean;
  /** Starts subscribing `channel`; calls `markLive` when it is. Never throws. */
  protected abstract attach(channel: string): void;
  protected abstract detach(channel: string): void;
  abstract publish(channel: string, message: string): Promise<void>;
  abstract close(): Promise<void>;

  subscribe(channel: string, listener: HintListener): () => void {
    let entry = this.channels.get(channel);
    if (!entry) {
      entry = { listeners: new Set(), live: false, attaching: false, waiting: new Set() };
      this.channels.set(channel, entry);
      this.attach(channel);
    }
    entry.listeners.add(listener);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      const current = this.channels.get(channel);
      if (!current) return;
      current.listeners.delete(listener);
      if (current.listeners.size === 0) {
        this.channels.delete(channel);
        for (const wake of current.waiting) wake();
        this.detach(channel);
      }
    };
  }

  subscribed(channel: string, timeoutMs = RELAY_TIMEOUT_MS): Promise<boolean> {
    const entry = this.channels.get(channel);
    if (!entry) return Promise.resolve(true);
    if (entry.live) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        entry.waiting.delete(wake);
        resolve(entry.live);
      };
      const timer = setTimeout(wake, timeoutMs);
      entry.waiting.add(wake);
    });
  }

  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  protected markLive(channel: string): void {
    const entry = this.channels.get(channel);
    if (!entry) return;
    entry.live = true;
    for (const wake of [...entry.waiting]) wake();
  }

  protected reconnected(): void {
    for (const listener of [...this.reconnectListeners]) listener();
  }

  protected deliver(channel: string, message: string): void {
    const entry = this.channels.get(channel);
    if (!entry) return;
    for (const listener of [...entry.listeners]) listener(message);
  }
}

export class MemoryRelay extends CountedRelay {
  readonly connected = true;
  readonly #unsubscribe = new Map<string, () => void>();
  constructor(private readonly bus: Bus) {
    super();
  }
  protected attach(channel: string): void {
    this.#unsubscribe.set(
      channel,
      this.bus.subscribe(channel, (m) => this.deliver(channel, m)),
    );
    this.markLive(channel);
  }
  protected detach(channel: string): void {
    this.#unsubscribe.get(channel)?.();
    this.#unsubscribe.delete(channel);
  }
  async publish(channel: string, message: string): Promise<void> {
    this.bus.publish(channel, message);
  }
  async close(): Promise<void> {
    for (const off of this.#unsubscribe.values()) off();
    this.#unsubscribe.clear();
  }
}

/** Settles with `work`, or rejects after `ms`; the timer never holds the process. */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/**
 * `sub` is a dedicated subscriber connection opened with `autoResubscribe: false`: this
 * relay resubscribes by itself after a reconnect, so it knows when the subscriptions are
 * live again (ioredis reports `ready` before its own resubscribe has landed). `pub` is
 * any command connection.
 */
export class RedisRelay extends CountedRelay {
  #readyOnce = false;
  #closed = false;
  /** +1 whenever the subscriber connection drops: replies of an older one are ignored. */
  #generation = 0;
  /**
   * A reconnect whose listeners have not run yet: the channels there at its `ready`
   * (those still to become live), or null when nothing is owed.
   */
  #owedReconnect: Map<string, Channel> | null = null;
  /** Runs owed listeners when the resubscribe does not land within the bound. */
  #owedTimer: NodeJS.Timeout | null = null;
  readonly #repair: NodeJS.Timeout;
  constructor(
    private readonly sub: Redis | Cluster,
    private readonly pub: Redis | Cluster,
    private readonly onError: (err: Error) => void,
  ) {
    super();
    sub.on('message', (channel: string, message: string) => this.deliver(channel, message));
    sub.on('ready', () => {
      if (this.#readyOnce && !this.#closed) {
        this.#owedReconnect = new Map(this.channels);
        if (this.#owedTimer) clearTimeout(this.#owedTimer);
        this.#owedTimer = setTimeout(() => this.#settleReconnect(true), RELAY_TIMEOUT_MS);
        this.#owedTimer.unref();
        this.#sync();
      }
      this.#readyOnce = true;
    });
    sub.on('close', () => this.#dropped());
    if (sub.status === 'ready') this.#readyOnce = true;
    this.#repair = setInterval(() => this.#sync(), REPAIR_MS);
    this.#repair.unref();
  }

  get connected(): boolean {
    return this.sub.status === 'ready';
  }

  /** The connection is gone: nothing is live, nothing in flight will answer. */
  #dropped(): void {
    this.#generation += 1;
    // Listeners stay owed; the next `ready` takes a new snapshot and restarts the bound.
    if (this.#owedTimer) clearTimeout(this.#owedTimer);
    this.#owedTimer = null;
    for (const entry of this.channels.values()) {
      entry.live = false;
      entry.attaching = false;
    }
  }

  /**
   * Subscribes, in one bounded SUBSCRIBE, every channel neither live nor on the wire;
   * once those owed by a reconnect are live, the reconnect listeners run.
   */
  #sync(): void {
    if (this.#closed || this.sub.status !== 'ready') return;
    const todo: [string, Channel][] = [];
    for (const [channel, entry] of this.channels) {
      if (!entry.live && !entry.attaching) {
        entry.attaching = true;
        todo.push([channel, entry]);
      }
    }
    if (todo.length === 0) {
      this.#settleReconnect();
      return;
    }
    const generation = this.#generation;
    const names = todo.map(([channel]) => channel);
    // An entry replaced meanwhile (unsubscribed, then subscribed anew) has its own
    // SUBSCRIBE behind the UNSUBSCRIBE: this reply says nothing about it.
    const current = () =>
      generation === this.#generation
        ? todo.filter(([channel, entry]) => this.channels.get(channel) === entry)
        : [];
    withTimeout(this.sub.subscribe(...names), RELAY_TIMEOUT_MS, 'SUBSCRIBE').then(
      () => {
        for (const [channel, entry] of current()) {
          entry.attaching = false;
          this.markLive(channel);
        }
        this.#settleReconnect();
      },
      (err: Error) => {
        // The repair timer or the next `ready` tries again.
        for (const [, entry] of current()) entry.attaching = false;
        this.onError(err);
      },
    );
  }

  /** Runs owed listeners once the snapshot's channels are live (or gone), or when `force`d. */
  #settleReconnect(force = false): void {
    const owed = this.#owedReconnect;
    if (!owed) return;
    if (!force) {
      for (const [channel, entry] of owed) {
        // An entry unsubscribed (or replaced) since `ready` is no longer waited for.
        if (this.channels.get(channel) === entry && !entry.live) return;
        owed.delete(channel);
      }
    }
    this.#owedReconnect = null;
    if (this.#owedTimer) clearTimeout(this.#owedTimer);
    this.#owedTimer = null;
    this.reconnected();
  }

  protected attach(_channel: string): void {
    this.#sync();
  }

  protected detach(channel: string): void {
    if (this.sub.status !== 'ready') return; // a new connection has no subscriptions
    withTimeout(this.sub.unsubscribe(channel), RELAY_TIMEOUT_MS, 'UNSUBSCRIBE').catch(this.onError);
  }

  async publish(channel: string, message: string): Promise<void> {
    await withTimeout(this.pub.publish(channel, message), RELAY_TIMEOUT_MS, 'PUBLISH');
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#repair);
    if (this.#owedTimer) clearTimeout(this.#owedTimer);
    this.sub.disconnect();
  }
}
