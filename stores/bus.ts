/**
 * The in-process bus: what Redis pub/sub is to a cluster, this is to the embedded
 * single-process mode. Delivery is asynchronous (a microtask later), like a publish
 * seen through a subscriber connection, so callers cannot come to rely on a listener
 * running inside the transition that published.
 */
export type Listener = (message: string, channel: string) => void;

export interface Bus {
  publish(channel: string, message: string): void;
  /** Returns the unsubscribe function. */
  subscribe(channel: string, listener: Listener): () => void;
}

export class MemoryBus implements Bus {
  readonly #listeners = new Map<string, Set<Listener>>();

  publish(channel: string, message: string): void {
    const set = this.#listeners.get(channel);
    if (!set || set.size === 0) return;
    const targets = [...set];
    queueMicrotask(() => {
      for (const listener of targets) listener(message, channel);
    });
  }

  subscribe(channel: string, listener: Listener): () => void {
    let set = this.#listeners.get(channel);
    if (!set) {
      set = new Set();
      this.#listeners.set(channel, set);
    }
    set.add(listener);
    return () => {
      const current = this.#listeners.get(channel);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.#listeners.delete(channel);
    };
  }
}
