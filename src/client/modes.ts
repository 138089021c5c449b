/**
 * The one check both SDKs' state machines make: a mode may only move to the modes its
 * table lists. Each machine keeps its table (`as const`) next to its `setMode()`, which
 * calls this before it does the entry work of the new mode. No imports: the browser
 * bundle carries it.
 */

/** Mode -> the modes it may move to. */
export type Moves<M extends string> = { readonly [K in M]: readonly M[] };

/** Throws unless `from -> to` is in `moves`. */
export function assertMove<M extends string>(
  machine: string,
  moves: Moves<M>,
  from: M,
  to: M,
): void {
  if (!moves[from].includes(to)) {
    throw new Error(`${machine}: illegal mode change ${from} -> ${to}`);
  }
}
