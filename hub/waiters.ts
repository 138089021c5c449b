/**
 * Long-poll waits (`GET .../requests/:id?wait_ms=N`): subscribe to the runtime's
 * updates first, then read, then wait, so a result landing between the read and the
 * wait is not missed. Answers as soon as the request is terminal, or after N ms with
 * its current state.
 */
import { type RequestRecord, type RuntimeRef, TERMINAL } from '../stores/domain.js';
import { runtimeKeys } from '../stores/keys.js';
import type { RequestStore, UpdateHint } from '../stores/store.js';
import type { Relay } from './relay.js';

export async function waitForTerminal(
  store: RequestStore,
  relay: Relay,
  rt: RuntimeRef,
  id: string,
  waitMs: number,
  abort?: AbortSignal,
): Promise<RequestRecord | null> {
  let wake: () => void = () => {};
  const woken = new Promise<void>((resolve) => {
    wake = resolve;
  });
  const unsubscribe = relay.subscribe(runtimeKeys(store.settings.prefix, rt).updates, (m) => {
    try {
      const hint = JSON.parse(m) as UpdateHint;
      if (hint.id === id && TERMINAL.has(hint.status)) wake();
    } catch {
      // not a hint
    }
  });
  const timer = setTimeout(wake, waitMs);
  const onAbort = () => wake();
  abort?.addEventListener('abort', onAbort, { once: true });
  try {
    const first = await store.get(rt, id);
    if (!first || TERMINAL.has(first.status) || waitMs <= 0) return first;
    await woken;
    return await store.get(rt, id);
  } finally {
    clearTimeout(timer);
    abort?.removeEventListener('abort', onAbort);
    unsubscribe();
  }
}
