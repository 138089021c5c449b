/**
 * Long-poll waits (`GET .../requests/:id?wait_ms=N`): subscribe to the runtime's
 * updates first, then read, then wait, so a result landing between the read and the
 * wait is not missed. Answers as soon as the request is terminal, or after N ms with
 * its current state. Hints can be lost (the subscriber connection dropped): after the
 * relay reconnects, and every RECHECK_MS regardless, the waiter reads the record again.
 * A terminal hint that carries its record (stores/hints.ts) is the answer, unread.
 *
 * Every wait answers by its deadline (DESIGN.md section 7): the subscription is awaited
 * for at most UNSUBSCRIBED_RECHECK_MS (not live: the waiter reads at once and then more
 * often instead), and a read the store does not answer by the deadline is a
 * store_unavailable error, never a hang.
 */

import { TERMINAL } from '../protocol/index.js';
import type { RequestRecord, RuntimeRef } from '../stores/domain.js';
import { StoreError } from '../stores/errors.js';
import { parseHint } from '../stores/hints.js';
import { runtimeKeys } from '../stores/keys.js';
import type { RequestStore } from '../stores/store.js';
import type { Relay } from './relay.js';

const RECHECK_MS = 5_000;
/** Re-read period while the subscription is not live (hints may not arrive at all). */
const UNSUBSCRIBED_RECHECK_MS = 500;
/** A read started just before the deadline still gets this long to answer. */
const READ_GRACE_MS = 500;

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
  // A terminal hint that carries its record is the answer: no read.
  let hinted: RequestRecord | undefined;
  const channel = runtimeKeys(store.settings.prefix, rt).updates;
  const quoted = `"${id}"`;
  const unsubscribe = relay.subscribe(channel, (m) => {
    // Every hint of the runtime comes here: only this request's are decoded.
    if (!m.includes(quoted)) return;
    const hint = parseHint(m);
    if (hint?.id !== id || !TERMINAL.has(hint.status)) return;
    hinted = hint.record;
    signal();
  });
  const offReconnect = relay.onReconnect(signal);
  abort?.addEventListener('abort', signal);
  const deadline = Date.now() + waitMs;
  try {
    // The subscription is awaited briefly, never for the whole wait: not live by then
    // (a subscriber link down or black-holed), the waiter reads now and then every
    // UNSUBSCRIBED_RECHECK_MS, since no hint may arrive. An abort or a reconnect ends
    // this wait early too.
    let live = false;
    if (relay.connected) {
      live = await new Promise<boolean>((resolve) => {
        resume = () => resolve(false);
        void relay.subscribed(channel, Math.min(waitMs, UNSUBSCRIBED_RECHECK_MS)).then(resolve);
      });
      resume = null;
    }
    for (;;) {
      signalled = false;
      const record =
        hinted ?? (await boundedGet(store, rt, id, deadline - Date.now() + READ_GRACE_MS));
      const left = deadline - Date.now();
      if (!record || TERMINAL.has(record.status) || left <= 0 || abort?.aborted) return record;
      if (signalled) continue;
      if (!live) live = await relay.subscribed(channel, 0);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(
          resolve,
          Math.min(left, live ? RECHECK_MS : UNSUBSCRIBED_RECHECK_MS),
        );
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

/** `store.get`, or store_unavailable when it has not answered within `ms`. */
function boundedGet(
  store: RequestStore,
  rt: RuntimeRef,
  id: string,
  ms: number,
): Promise<RequestRecord | null> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new StoreError('store_unavailable', 'the store did not answer in time')),
      Math.max(0, ms),
    );
  });
  return Promise.race([store.get(rt, id), expired]).finally(() => clearTimeout(timer));
}
