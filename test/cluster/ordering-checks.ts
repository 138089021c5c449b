/**
 * The chaos suite's ordering rules (ordering keys, docs/PROTOCOL.md), as pure checks over
 * what the producers and the daemons logged and what the hub stored. Every event is
 * numbered by one counter in the test process, where the producers and the daemons both
 * run: a total order, without ties, that agrees with every causal chain through the hub
 * (a handler's end, its report, the next request's promotion and claim, its push, that
 * handler's start). The rules are listed in chaos.test.ts's header.
 */

/** One create of a keyed request, as its producer logged it. */
export interface KeyedCreate {
  id: string;
  /** `runtime/key`: a line is one runtime's requests of one key. */
  line: string;
  /** The counter when the producer first sent the create (before any retry). */
  sent: number;
  /** The counter when the producer read its 201 or 200. */
  acked: number;
}

/** One handler run: the attempt (id, epoch) a daemon ran, from start to return. */
export interface Run {
  id: string;
  epoch: number;
  daemon: number;
  start: number;
  /** null while the handler has not returned. */
  end: number | null;
}

/** The record as the hub has it at the end. */
export interface Outcome {
  status: string;
  epoch: number;
}

export interface OrderingFigures {
  lines: number;
  keyed: number;
  completed: number;
  /** Pairs (X, Y) of a line with X acknowledged before Y was sent, X completed (K2). */
  orderedPairs: number;
  /** Requests created while one before them in their line had not finished: held. */
  heldBehind: number;
  /** Requests run at more than one epoch (redelivered: the head kept its place). */
  redelivered: number;
}

const show = (r: Run) => `d${r.daemon} epoch ${r.epoch} [${r.start}..${r.end ?? 'running'}]`;

/**
 * K1 and K2 over every line. The accepted run of a completed request is its run at the
 * record's epoch (the attempt whose report was accepted). K1: a line's accepted runs never
 * overlap. K2: when X's create was acknowledged before Y's was sent (X is before Y in the
 * line) and X completed, every run of Y, at any epoch, started after X's accepted run
 * ended. Runs that were not accepted are otherwise free: an attempt whose lease lapsed
 * (its node paused, its push late) may still run beside what replaced it.
 */
export function checkOrdering(
  creates: readonly KeyedCreate[],
  runs: readonly Run[],
  outcomes: ReadonlyMap<string, Outcome>,
): { failures: string[]; figures: OrderingFigures } {
  const failures: string[] = [];
  const runsOf = new Map<string, Run[]>();
  for (const r of runs) runsOf.set(r.id, [...(runsOf.get(r.id) ?? []), r]);
  const byLine = new Map<string, KeyedCreate[]>();
  for (const c of creates) byLine.set(c.line, [...(byLine.get(c.line) ?? []), c]);

  /** The accepted run of a completed request; a failure when there is not exactly one. */
  const accepted = new Map<string, Run>();
  for (const c of creates) {
    const outcome = outcomes.get(c.id);
    if (outcome?.status !== 'completed') continue;
    const at = (runsOf.get(c.id) ?? []).filter((r) => r.epoch === outcome.epoch);
    if (at.length !== 1 || (at[0] as Run).end === null) {
      failures.push(
        `${c.line} ${c.id}: completed at epoch ${outcome.epoch}, but the daemons logged ` +
          `${at.length} run(s) there: ${at.map(show).join(', ') || 'none'}`,
      );
      continue;
    }
    accepted.set(c.id, at[0] as Run);
  }

  let orderedPairs = 0;
  let heldBehind = 0;
  for (const [line, cs] of byLine) {
    // K1: sorted by start, each accepted run starts after every earlier one has ended.
    const done = cs
      .flatMap((c) => (accepted.has(c.id) ? [[c.id, accepted.get(c.id) as Run] as const] : []))
      .sort((a, b) => a[1].start - b[1].start);
    let last: (typeof done)[number] | null = null;
    for (const cur of done) {
      if (last && cur[1].start < (last[1].end as number)) {
        failures.push(
          `${line}: K1 ${cur[0]} (${show(cur[1])}) started while ${last[0]} ` +
            `(${show(last[1])}) ran`,
        );
      }
      if (!last || (cur[1].end as number) > (last[1].end as number)) last = cur;
    }
    // K2: what was created after X was acknowledged runs only after X's accepted run.
    for (const y of cs) {
      let held = false;
      for (const x of cs) {
        if (x === y || x.acked >= y.sent) continue;
        const ax = accepted.get(x.id);
        if (!ax) continue;
        orderedPairs++;
        if ((ax.end as number) > y.acked) held = true;
        for (const ry of runsOf.get(y.id) ?? []) {
          if (ry.start < (ax.end as number)) {
            failures.push(
              `${line}: K2 ${y.id} (created after ${x.id} was acknowledged) ran ` +
                `${show(ry)} before ${x.id}'s accepted run ${show(ax)} ended`,
            );
          }
        }
      }
      if (held) heldBehind++;
    }
  }
  return {
    failures,
    figures: {
      lines: byLine.size,
      keyed: creates.length,
      completed: accepted.size,
      orderedPairs,
      heldBehind,
      redelivered: creates.filter(
        (c) => new Set((runsOf.get(c.id) ?? []).map((r) => r.epoch)).size > 1,
      ).length,
    },
  };
}
