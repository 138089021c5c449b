/**
 * Long-poll waits (`GET .../requests/:id?wait_ms=N`): subscribe to the runtime's
 * updates first, then read, then wait, so a result landing between the read and the
 * wait is not missed. Answers as soon as the request is terminal, or after N ms with
 * its current state. Hints can be lost (the subscriber connection dropped): after the
 * relay reconnects, and every RECHECK_MS regardless, the waiter reads the record again.
 */
import { type RequestRecord, type RuntimeRef, TERMINAL } from '../stores/domain.js';
import { runtimeKeys } from '../stores/keys.js';
import type { RequestStore, UpdateHint } from '../stores/store.js';
import type { Relay } from './relay.js';

const RECHECK_MS = 5_000;

export async function waitForTerminal(
  store: RequestStore,
  relay: Relay,
  rt: RuntimeRef,
  id: string,
  waitMs: number,
  abort?: AbortSignal,
): Promise<RequestRecord | null> {
  // A signal (terminal hint, relay reconnect, abort) means: read again. It is cleared
  // before each read, so one arriving while a read is under way is not lost.
  let signalled = false;
  let resume: (() => void) | null = null;
  const signal = () => {
    signalled = true;
    resume?.();
  };
  const channel = runtimeKeys(store.settings.prefix, rt).updates;
  const unsubscribe = relay.subscribe(channel, (m) => {
    try {
      const hint = JSON.parse(m) as UpdateHint;
      if (hint.id === id && TERMINAL.has(hint.status)) signal();
    } catch {
      // not a hint
    }
  });
  const offReconnect = relay.onReconnect(signal);
  abort?.addEventListener('abort', signal);
  const deadline = Date.now() + waitMs;
  try {
    await relay.subscribed(channel);
    for (;;) {
      signalled = false;
      const record = await store.get(rt, id);
      const left = deadline - Date.now();
      if (!record || TERMINAL.has(record.status) || left <= 0 || abort?.aborted) return record;
      if (signalled) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, RECHECK_MS));
        resume = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      resume = null;
    }
  } finally {
    abort?.removeEventListener('abort', signal);
    offReconnect();
    unsubscribe();
  }
}
