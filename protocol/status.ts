/**
 * A request's statuses (DESIGN.md section 2) and the sets the state machine and every
 * waiter use. Plain constants, so the browser bundle carries no schema library.
 */
export const STATUSES = [
  'pending',
  'running',
  'completed',
  'failed',
  'timeout',
  'cancelled',
] as const;
export type Status = (typeof STATUSES)[number];

/** A request in one of these never changes again (except by a retry, which is a new request). */
export const TERMINAL: ReadonlySet<Status> = new Set<Status>([
  'completed',
  'failed',
  'timeout',
  'cancelled',
]);

/** Terminal states a request can be retried from (the dead letters). */
export const RETRYABLE: ReadonlySet<Status> = new Set<Status>(['failed', 'timeout', 'cancelled']);

export function isTerminal(status: string): boolean {
  return TERMINAL.has(status as Status);
}
