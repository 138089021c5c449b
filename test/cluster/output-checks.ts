/**
 * The chaos suite's output rules (DESIGN.md section 6), as pure checks over what the
 * daemons logged, what the hub stored and what the clients reassembled. Each returns
 * the broken rules as messages (empty: all hold), so the suite can report every
 * request at once. The rules are listed in chaos.test.ts's header.
 */
import type { Chunk } from '../helpers/output.js';

/** What one attempt (id, epoch) wrote with `ctx.output`, as its daemon logged it. */
export interface AttemptLog {
  daemon: number;
  /** Every value written, in write order (also those written after a refusal). */
  sent: unknown[];
  /** The highest write number (1-based) whose promise resolved: stored by the hub. */
  resolvedUpTo: number;
  /** Writes whose promise rejected, by `OutputError` code. */
  rejected: Record<string, number>;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
/** A chunk as text, whatever the key order of the object it was read into. */
const chunkKey = (c: Chunk | undefined) =>
  c ? JSON.stringify([c.offset, c.epoch, c.data]) : 'none';

/**
 * O1 and O2 for one request's stored output: offsets 1..N, epochs never decreasing, no
 * epoch past the record's; each epoch's chunks a prefix of what its attempt wrote,
 * covering every write that resolved; for a completed request the record's epoch's
 * chunks are exactly what that attempt wrote, every write resolved.
 */
export function checkStored(
  id: string,
  stored: readonly Chunk[],
  record: { status: string; epoch: number },
  attempts: ReadonlyMap<number, AttemptLog>,
): string[] {
  const bad: string[] = [];
  const at = (i: number) => JSON.stringify(stored[i]);
  for (let i = 0; i < stored.length; i++) {
    const c = stored[i] as Chunk;
    if (c.offset !== i + 1) {
      bad.push(`${id}: stored chunk ${i + 1} has offset ${c.offset} (${at(i)})`);
      break;
    }
    if (i > 0 && c.epoch < (stored[i - 1] as Chunk).epoch) {
      bad.push(`${id}: epoch goes back at offset ${c.offset} (${at(i - 1)} then ${at(i)})`);
      break;
    }
    if (c.epoch > record.epoch) {
      bad.push(`${id}: offset ${c.offset} has epoch ${c.epoch}, past the record's ${record.epoch}`);
      break;
    }
  }
  const byEpoch = new Map<number, unknown[]>();
  for (const c of stored) byEpoch.set(c.epoch, [...(byEpoch.get(c.epoch) ?? []), c.data]);
  for (const [epoch, data] of byEpoch) {
    const log = attempts.get(epoch);
    if (!log) {
      bad.push(`${id}: ${data.length} chunks stored at epoch ${epoch}, which no daemon ran`);
      continue;
    }
    const prefix = log.sent.slice(0, data.length);
    if (data.length > log.sent.length || !same(data, prefix)) {
      bad.push(
        `${id}: epoch ${epoch} stored ${JSON.stringify(data)}, ` +
          `not a prefix of what daemon d${log.daemon} sent ${JSON.stringify(log.sent)}`,
      );
    }
  }
  for (const [epoch, log] of attempts) {
    const kept = byEpoch.get(epoch)?.length ?? 0;
    if (kept < log.resolvedUpTo) {
      bad.push(
        `${id}: epoch ${epoch} has ${kept} chunks stored, ` +
          `but daemon d${log.daemon} had ${log.resolvedUpTo} acknowledged`,
      );
    }
  }
  if (record.status === 'completed') {
    const log = attempts.get(record.epoch);
    const data = byEpoch.get(record.epoch) ?? [];
    if (!log) {
      bad.push(`${id}: completed at epoch ${record.epoch}, which no daemon logged`);
    } else if (!same(data, log.sent) || log.resolvedUpTo !== log.sent.length) {
      bad.push(
        `${id}: completed at epoch ${record.epoch} by d${log.daemon}, which sent ` +
          `${log.sent.length} (${log.resolvedUpTo} resolved, rejected ` +
          `${JSON.stringify(log.rejected)}), but ${data.length} are stored: ` +
          `${JSON.stringify(data)}`,
      );
    }
  }
  return bad;
}

/** O3: a client's reassembled output is the stored output, chunk for chunk. */
export function checkReassembled(
  id: string,
  reader: string,
  got: readonly Chunk[],
  stored: readonly Chunk[],
): string[] {
  const n = Math.max(got.length, stored.length);
  for (let i = 0; i < n; i++) {
    if (chunkKey(got[i]) !== chunkKey(stored[i])) {
      return [
        `${id}: ${reader} got ${got.length} chunks, ${stored.length} stored; first ` +
          `difference at #${i + 1}: got ${JSON.stringify(got[i])}, stored ` +
          `${JSON.stringify(stored[i])}`,
      ];
    }
  }
  return [];
}
