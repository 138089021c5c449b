/**
 * What bench/sockets.ts reads about the processes it started: RSS and CPU time of a pid
 * from /proc (Linux only), the open-files limit, and Redis's per-command call counters.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** Resident set size of `pid` in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb) * 1024;
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    } catch {
      ticksPerSecond = 100; // the Linux default (USER_HZ)
    }
    if (!Number.isFinite(ticksPerSecond) || ticksPerSecond <= 0) ticksPerSecond = 100;
  }
  return ticksPerSecond;
}

/** User + system CPU time `pid` has used so far, in ms (utime + stime of /proc/<pid>/stat). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / clockTicks();
}

/** The soft and hard open-files limits of `pid` ('self' for this process). */
export function openFilesLimit(pid: number | 'self'): { soft: number; hard: number } {
  const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  const n = (v: string | undefined) =>
    v === undefined || v === 'unlimited' ? Infinity : Number(v);
  return { soft: n(m?.[1]), hard: n(m?.[2]) };
}

/** Calls per command so far (INFO commandstats), e.g. {evalsha: 1200, zadd: 1200}. */
export async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const text = await redis.info('commandstats');
  const calls = new Map<string, number>();
  for (const m of text.matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)) {
    calls.set(m[1] as string, Number(m[2]));
  }
  return calls;
}

/**
 * Per-second rate of each command between two commandstats readings, without the
 * bench's own INFO calls. Commands that Lua scripts run are counted too (Redis counts
 * `redis.call` in commandstats), so the total is the work Redis did, not round trips.
 */
export function commandRates(
  before: Map<string, number>,
  after: Map<string, number>,
  seconds: number,
): { total: number; top: Record<string, number> } {
  const rates: [string, number][] = [];
  for (const [name, calls] of after) {
    if (name === 'info') continue;
    const delta = calls - (before.get(name) ?? 0);
    if (delta > 0) rates.push([name, delta / seconds]);
  }
  rates.sort((a, b) => b[1] - a[1]);
  const total = rates.reduce((sum, [, r]) => sum + r, 0);
  return { total, top: Object.fromEntries(rates.slice(0, 6).map(([k, r]) => [k, round(r, 1)])) };
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
