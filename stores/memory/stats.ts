/**
 * The memory store's stats buckets (stores/stats.ts): a map of workspace-minute buckets
 * with their expiry, in this process. Expired buckets are dropped on every write.
 */
import { workspaceStatsKey } from '../keys.js';
import { STATS_TTL_MS, type StatsBucket, type StatsWrite } from '../stats.js';

interface Held {
  fields: StatsBucket;
  expiresAt: number;
}

export class MemoryStats {
  readonly #buckets = new Map<string, Held>();

  constructor(private readonly prefix: string) {}

  record(writes: StatsWrite[], now: number): void {
    for (const [key, held] of this.#buckets) if (held.expiresAt <= now) this.#buckets.delete(key);
    for (const w of writes) {
      const key = workspaceStatsKey(this.prefix, w.workspace, w.minute);
      let held = this.#buckets.get(key);
      if (!held) {
        held = { fields: {}, expiresAt: 0 };
        this.#buckets.set(key, held);
      }
      for (const [field, n] of Object.entries(w.counts)) {
        held.fields[field] = (held.fields[field] ?? 0) + n;
      }
      Object.assign(held.fields, w.gauges);
      held.expiresAt = now + STATS_TTL_MS;
    }
  }

  read(workspace: string, minutes: number[], now: number): StatsBucket[] {
    return minutes.map((minute) => {
      const held = this.#buckets.get(workspaceStatsKey(this.prefix, workspace, minute));
      return held && held.expiresAt > now ? { ...held.fields } : {};
    });
  }
}
