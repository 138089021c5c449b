/**
 * The figures of bench/vs-bullmq.ts: percentiles, one round's metrics, the per-round
 * table, the table of medians over rounds (Switchboard | BullMQ | ratio) and the JSON line.
 */
import { round } from './proc-stats.js';

export type Side = 'switchboard' | 'bullmq';
export const SIDE_NAMES: Record<Side, string> = { switchboard: 'Switchboard', bullmq: 'BullMQ' };

export interface Percentiles {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function percentiles(values: number[]): Percentiles {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
  return {
    n: s.length,
    p50: round(at(0.5), 3),
    p99: round(at(0.99), 3),
    max: round(s.at(-1) ?? 0, 3),
  };
}

export interface RoundMetrics {
  side: Side;
  round: number;
  completed: number;
  failed: number;
  completedPerS: number;
  /** End to end under load: create/add -> the waiting client saw it completed (ms). */
  latency: Percentiles;
  /** Send -> handler start, in the timed pass (64 in flight) (ms). */
  dispatchLoaded: Percentiles;
  /** Send -> handler start, one request at a time (ms). */
  dispatchUnloaded: Percentiles;
  /** End to end, one request at a time (ms). */
  latencyUnloaded: Percentiles;
  /** CPU ms per completed request, per process group, in the timed pass. */
  cpuMsPerRequest: { system: number; clients: number; redis: number; total: number };
  /** INFO commandstats calls (script-internal ones included) per completed request. */
  redisCommandsPerLife: number;
  /** From the MONITOR pass: commands clients sent, and commands scripts ran, per life. */
  clientCommandsPerLife: number;
  scriptCommandsPerLife: number;
  monitorCompleted: number;
  /** Per life: the commands Redis counted (commandstats), and the ones clients sent. */
  topRedisCommands: Record<string, number>;
  topClientCommands: Record<string, number>;
}

export function perLife(byCommand: Map<string, number>, lives: number, top = 8) {
  return Object.fromEntries(
    [...byCommand]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => [k, round(v / lives, 2)]),
  );
}

interface Metric {
  label: string;
  get: (m: RoundMetrics) => number;
  digits: number;
}

const METRICS: Metric[] = [
  { label: 'completed/s', get: (m) => m.completedPerS, digits: 0 },
  { label: 'latency p50 (ms)', get: (m) => m.latency.p50, digits: 2 },
  { label: 'latency p99 (ms)', get: (m) => m.latency.p99, digits: 2 },
  { label: 'latency max (ms)', get: (m) => m.latency.max, digits: 2 },
  { label: 'dispatch p50 under load (ms)', get: (m) => m.dispatchLoaded.p50, digits: 3 },
  { label: 'dispatch p50 unloaded (ms)', get: (m) => m.dispatchUnloaded.p50, digits: 3 },
  { label: 'dispatch p99 unloaded (ms)', get: (m) => m.dispatchUnloaded.p99, digits: 3 },
  { label: 'latency p50 unloaded (ms)', get: (m) => m.latencyUnloaded.p50, digits: 3 },
  { label: 'CPU ms/request: system', get: (m) => m.cpuMsPerRequest.system, digits: 3 },
  { label: 'CPU ms/request: clients', get: (m) => m.cpuMsPerRequest.clients, digits: 3 },
  { label: 'CPU ms/request: redis', get: (m) => m.cpuMsPerRequest.redis, digits: 3 },
  { label: 'CPU ms/request: total', get: (m) => m.cpuMsPerRequest.total, digits: 3 },
  { label: 'Redis commands per life', get: (m) => m.redisCommandsPerLife, digits: 1 },
  { label: 'client round trips per life', get: (m) => m.clientCommandsPerLife, digits: 2 },
  { label: 'script-run commands per life', get: (m) => m.scriptCommandsPerLife, digits: 1 },
];

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function medians(rounds: RoundMetrics[], side: Side): Record<string, number> {
  const mine = rounds.filter((r) => r.side === side);
  return Object.fromEntries(
    METRICS.map((m) => [m.label, round(median(mine.map(m.get)), m.digits + 1)]),
  );
}

const fmt = (v: number, digits: number) =>
  Number.isFinite(v)
    ? v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : 'n/a';

/** One line per round, as a markdown table. */
export function roundsTable(rounds: RoundMetrics[]): string {
  const head = ['round', 'side', ...METRICS.map((m) => m.label)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rounds) {
    const cells = [
      String(r.round),
      SIDE_NAMES[r.side],
      ...METRICS.map((m) => fmt(m.get(r), m.digits)),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Medians over rounds: metric | Switchboard | BullMQ | ratio (SB/BullMQ). */
export function medianTable(rounds: RoundMetrics[]): string {
  const sb = medians(rounds, 'switchboard');
  const bq = medians(rounds, 'bullmq');
  const lines = ['| metric | Switchboard | BullMQ | ratio (SB/BullMQ) |', '|---|---:|---:|---:|'];
  for (const m of METRICS) {
    const a = sb[m.label] as number;
    const b = bq[m.label] as number;
    const ratio = b === 0 ? Number.NaN : a / b;
    lines.push(`| ${m.label} | ${fmt(a, m.digits)} | ${fmt(b, m.digits)} | ${fmt(ratio, 2)} |`);
  }
  return lines.join('\n');
}

/** Per life, the commands of the last round of each side: what Redis counted, what clients sent. */
export function commandLines(rounds: RoundMetrics[]): string {
  const out: string[] = [];
  for (const side of ['switchboard', 'bullmq'] as const) {
    const last = rounds.filter((r) => r.side === side).at(-1);
    if (!last) continue;
    out.push(
      `${SIDE_NAMES[side]} per life, commandstats: ${JSON.stringify(last.topRedisCommands)}`,
      `${SIDE_NAMES[side]} per life, sent by clients (MONITOR): ${JSON.stringify(last.topClientCommands)}`,
    );
  }
  return out.join('\n');
}

export function jsonLine(rounds: RoundMetrics[], setup: Record<string, unknown>): string {
  return JSON.stringify({
    bench: 'vs-bullmq',
    ...setup,
    median: { switchboard: medians(rounds, 'switchboard'), bullmq: medians(rounds, 'bullmq') },
    per_round: rounds,
  });
}
