/**
 * The relay carries hints between nodes: Redis pub/sub in a cluster, the in-process bus
 * when embedded. Subscriptions are reference-counted per channel: the first listener
 * subscribes, the last one leaving unsubscribes. After the subscriber connection comes
 * back, the relay resubscribes every channel and only then runs the `onReconnect`
 * listeners: hints sent while it was away are gone, so the node re-drains its daemons'
 * runtimes and its waiters and client sockets read again.
 */
import type { Cluster, Redis } from 'ioredis';
import type { Bus } from '../stores/bus.js';

export type HintListener = (message: string) => void;

export interface Relay {
  subscribe(channel: string, listener: HintListener): () => void;
  /**
   * Resolves once the channel's subscription is live (Redis acknowledged it), so a read
   * made after it cannot miss a hint published in between. Never rejects: a failed
   * subscribe resolves too, and the reconnect path makes up for it.
   */
  subscribed(channel: string): Promise<void>;
  publish(channel: string, message: string): Promise<void>;
  /** Returns the function that removes the listener. */
  onReconnect(listener: () => void): () => void;
  /** Whether the subscriber connection is up (readiness). */
  readonly connected: boolean;
  close(): Promise<void>;
}

/** Reference-counted listener sets; subclasses do the actual (un)subscribe. */
abstract class CountedRelay implements Relay {
  protected readonly listeners = new Map<string, Set<HintListener>>();
  protected readonly live = new Map<string, Promise<void>>();
  protected readonly reconnectListeners = new Set<() => void>();
  abstract readonly connected: boolean;
  protected abstract attach(channel: string): Promise<void>;
  protected abstract detach(channel: string): void;
  abstract publish(channel: string, message: string): Promise<void>;
  abstract close(): Promise<void>;

  subscribe(channel: string, listener: HintListener): () => void {
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      this.live.set(channel, this.attach(channel));
    }
    set.add(listener);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      const current = this.listeners.get(channel);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) {
        this.listeners.delete(channel);
        this.live.delete(channel);
        this.detach(channel);
      }
    };
  }

  subscribed(channel: string): Promise<void> {
    return this.live.get(channel) ?? Promise.resolve();
  }

  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  protected reconnected(): void {
    for (const listener of [...this.reconnectListeners]) listener();
  }

  protected deliver(channel: string, message: string): void {
    const set = this.listeners.get(channel);
    if (!set) return;
    for (const listener of [...set]) listener(message);
  }
}

export class MemoryRelay extends CountedRelay {
  readonly connected = true;
  readonly #unsubscribe = new Map<string, () => void>();
  constructor(private readonly bus: Bus) {
    super();
  }
  protected attach(channel: string): Promise<void> {
    this.#unsubscribe.set(
      channel,
      this.bus.subscribe(channel, (m) => this.deliver(channel, m)),
    );
    return Promise.resolve();
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

/**
 * `sub` is a dedicated subscriber connection opened with `autoResubscribe: false`: this
 * relay resubscribes by itself after a reconnect, so it knows when the subscriptions are
 * live again (ioredis reports `ready` before its own resubscribe has landed). `pub` is
 * any command connection.
 */
export class RedisRelay extends CountedRelay {
  #readyOnce = false;
  #closed = false;
  constructor(
    private readonly sub: Redis | Cluster,
    private readonly pub: Redis | Cluster,
    private readonly onError: (err: Error) => void,
  ) {
    super();
    sub.on('message', (channel: string, message: string) => this.deliver(channel, message));
    sub.on('ready', () => {
      if (this.#readyOnce && !this.#closed) void this.#resubscribe();
      this.#readyOnce = true;
    });
    if (sub.status === 'ready') this.#readyOnce = true;
  }

  get connected(): boolean {
    return this.sub.status === 'ready';
  }

  async #resubscribe(): Promise<void> {
    const channels = [...this.listeners.keys()];
    try {
      if (channels.length > 0) await this.sub.subscribe(...channels);
    } catch (err) {
      // The connection dropped again; its next 'ready' retries.
      this.onError(err as Error);
      return;
    }
    this.reconnected();
  }

  protected attach(channel: string): Promise<void> {
    return this.sub.subscribe(channel).then(
      () => {},
      (err: Error) => this.onError(err),
    );
  }

  protected detach(channel: string): void {
    this.sub.unsubscribe(channel).catch(this.onError);
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.pub.publish(channel, message);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.sub.disconnect();
  }
}
