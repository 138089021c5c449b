/**
 * Loads the Lua scripts (one file per transition, `--!include` resolved from
 * lua/includes/) and knows each script's KEYS and ARGV order. Callers build their
 * arguments only through the functions here, so no other module knows key order.
 */
import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import type { RuntimeKeys } from '../keys.js';

const LUA_DIR = new URL('./lua/', import.meta.url);

export const SCRIPT_NAMES = [
  'create',
  'get',
  'claim',
  'release',
  'renew',
  'report',
  'cancel',
  'retry',
  'output',
  'output_read',
  'list',
  'expire',
  'presence',
  'runtime_info',
  'forget_runtime',
  'touch_runtime',
  'lock_bucket',
  'rate',
] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

/** A script's source with its includes inlined. */
export function scriptSource(name: ScriptName): string {
  const raw = readFileSync(new URL(`${name}.lua`, LUA_DIR), 'utf8');
  return raw.replace(/^--!include (\S+)$/gm, (_, file: string) =>
    readFileSync(new URL(`includes/${file}`, LUA_DIR), 'utf8'),
  );
}

/** Defines every script on a connection (ioredis sends EVALSHA, falling back to EVAL). */
export function defineScripts(redis: Redis | Cluster): void {
  for (const name of SCRIPT_NAMES) {
    redis.defineCommand(`sb_${name}`, { lua: scriptSource(name) });
  }
}

/** Run a defined script: `keys` then `argv`, the key count sent first. */
export function runScript(
  redis: Redis | Cluster,
  name: ScriptName,
  keys: readonly string[],
  argv: readonly (string | number)[],
): Promise<unknown> {
  const command = (redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[
    `sb_${name}`
  ];
  if (!command) throw new Error(`script ${name} is not defined on this connection`);
  return command.call(redis, keys.length, ...keys, ...argv);
}

/** What every per-runtime script receives first (lua/includes/common.lua). */
export interface RuntimeCall {
  keys: RuntimeKeys;
  /** Clock override in ms, or undefined to let Redis TIME decide. */
  now: number | undefined;
  retentionMs: number;
}

export function runtimeKeyList(k: RuntimeKeys): string[] {
  return [k.pending, k.deadlines, k.leases, k.done, k.ids, k.conns];
}

export function runtimeArgv(call: RuntimeCall): (string | number)[] {
  const k = call.keys;
  return [k.recordPrefix, call.now ?? '', k.updates, k.wake, call.retentionMs];
}

/** Items as create.lua reads them: 11 fields each. */
export interface CreateItem {
  id: string;
  kind: string;
  payload: string;
  priority: number;
  max_attempts: number;
  pending_timeout_ms: number;
  lease_ms: number;
  created_by: string;
  /** '' for none. */
  ordering_key: string;
  /** The create's trace context ('' fields: none, nothing stored). */
  traceparent: string;
  tracestate: string;
}

export function createArgs(
  call: RuntimeCall,
  rt: { workspace: string; runtime: string },
  items: readonly CreateItem[],
  idem: { key: string; fingerprint: string; ttlMs: number } | undefined,
  maxPending: number,
): { keys: string[]; argv: (string | number)[] } {
  const keys = runtimeKeyList(call.keys);
  if (idem) keys.push(call.keys.idem(idem.key));
  const argv = [
    ...runtimeArgv(call),
    rt.workspace,
    rt.runtime,
    idem?.fingerprint ?? '',
    idem?.ttlMs ?? 0,
    maxPending,
    items.length,
  ];
  for (const it of items) {
    argv.push(
      it.id,
      it.kind,
      it.payload,
      it.priority,
      it.max_attempts,
      it.pending_timeout_ms,
      it.lease_ms,
      it.created_by,
      it.ordering_key,
      it.traceparent,
      it.tracestate,
    );
  }
  return { keys, argv };
}

/** Arguments of every other per-runtime script: the common part, then `extra`. */
export function runtimeArgs(
  call: RuntimeCall,
  extra: readonly (string | number)[],
): { keys: string[]; argv: (string | number)[] } {
  return { keys: runtimeKeyList(call.keys), argv: [...runtimeArgv(call), ...extra] };
}
