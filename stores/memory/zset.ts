/**
 * A small in-memory sorted set, the embedded counterpart of a Redis ZSET: members are
 * ordered by score, then by member (code unit order, which for ASCII ids such as ULIDs
 * is the byte order Redis uses). Kept as a sorted array: inserts and removals shift,
 * but reads in order are plain slices, and the queues of one runtime stay small enough.
 */
interface Entry {
  member: string;
  score: number;
}

function before(aScore: number, aMember: string, b: Entry): boolean {
  return aScore < b.score || (aScore === b.score && aMember < b.member);
}

export class ZSet {
  readonly #scores = new Map<string, number>();
  readonly #entries: Entry[] = [];

  get size(): number {
    return this.#entries.length;
  }

  has(member: string): boolean {
    return this.#scores.has(member);
  }

  /** Add or move a member. */
  add(member: string, score: number): void {
    this.delete(member);
    const at = this.#lowerBound(score, member);
    this.#entries.splice(at, 0, { member, score });
    this.#scores.set(member, score);
  }

  delete(member: string): boolean {
    const score = this.#scores.get(member);
    if (score === undefined) return false;
    this.#entries.splice(this.#lowerBound(score, member), 1);
    this.#scores.delete(member);
    return true;
  }

  /** The lowest-ranked member, if any. */
  first(): string | undefined {
    return this.#entries[0]?.member;
  }

  /** The first member of each distinct score, in order (the heads of its bands). */
  *firstOfEachScore(): Generator<string> {
    let i = 0;
    while (i < this.#entries.length) {
      const entry = this.#entries[i] as Entry;
      yield entry.member;
      i = this.#above(entry.score);
    }
  }

  /** Members with score <= max, in order (a copy: safe to mutate the set meanwhile). */
  upTo(max: number): string[] {
    const out: string[] = [];
    for (const entry of this.#entries) {
      if (entry.score > max) break;
      out.push(entry.member);
    }
    return out;
  }

  /** Members ranked strictly below (score, member), highest first; all when omitted. */
  *descendingBelow(score?: number, member?: string): Generator<string> {
    let i =
      score === undefined || member === undefined
        ? this.#entries.length
        : this.#lowerBound(score, member);
    while (--i >= 0) {
      const entry = this.#entries[i];
      if (entry) yield entry.member;
    }
  }

  /** Index of the first entry with a score above `score`. */
  #above(score: number): number {
    let lo = 0;
    let hi = this.#entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#entries[mid] as Entry).score <= score) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the first entry not ranked before (score, member). */
  #lowerBound(score: number, member: string): number {
    let lo = 0;
    let hi = this.#entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const entry = this.#entries[mid] as Entry;
      if (before(entry.score, entry.member, { member, score })) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
