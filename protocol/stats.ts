/**
 * GET /v1/stats: a workspace's per-minute figures for the last 15 minutes, merged from
 * every node (hub/stats.ts computes them, stores/stats.ts keeps them).
 */
import { z } from 'zod';

export const StatsMinute = z.object({
  /** Start of the minute (ISO 8601). */
  t: z.string(),
  created: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
  timeout: z.number().int(),
  cancelled: z.number().int(),
  /** Create to completed or failed: median, from log-scale buckets (within 19%); null: none. */
  p50_ms: z.number().nullable(),
  p99_ms: z.number().nullable(),
});
export type StatsMinute = z.infer<typeof StatsMinute>;

export const WorkspaceStats = z.object({
  /** The answering node's clock (ISO 8601): the last minute is under way until then. */
  now: z.string(),
  /** 15 minutes, oldest first; the last is the current one. */
  minutes: z.array(StatsMinute),
  /**
   * Up to 10 runtimes (the most pending over the window): each minute's pending count as
   * last sampled by a node's sweep, one per minute; null where none was sampled.
   */
  pending: z.record(z.string(), z.array(z.number().int().nullable())),
});
export type WorkspaceStats = z.infer<typeof WorkspaceStats>;
