/**
 * Every key a script receives, and every record key it derives from the record prefix,
 * must hash to one Redis Cluster slot: that is what lets the store run unchanged on
 * Redis Cluster. Checked for every script, for runtimes whose names look alike.
 */
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { runtimeKeys } from '../../stores/keys.js';
import { createArgs, runtimeArgs, SCRIPT_NAMES, scriptSource } from '../../stores/redis/scripts.js';

const runtimes = [
  { workspace: 'acme', runtime: 'laptop' },
  { workspace: 'a', runtime: 'b.c-d_e' },
  { workspace: 'w'.repeat(128), runtime: 'r'.repeat(128) },
];

describe('script keys', () => {
  it.each(runtimes)('all keys of $workspace/$runtime share one slot', (rt) => {
    const keys = runtimeKeys('sb', rt);
    const call = { keys, now: undefined, retentionMs: 1000 };
    const create = createArgs(
      call,
      rt,
      [],
      {
        key: 'idem{weird}key',
        fingerprint: 'f',
        ttlMs: 1,
      },
      100,
    );
    const other = runtimeArgs(call, []);
    const derived = [keys.record('01ABC'), keys.idem('x'), `${other.argv[0]}01XYZ`];
    const slots = new Set([...create.keys, ...other.keys, ...derived].map((k) => calculateSlot(k)));
    expect(slots.size).toBe(1);
    expect(create.keys).toHaveLength(7);
  });

  it('every per-runtime script uses the common calling convention', () => {
    const bucketScripts = new Set(['forget_runtime', 'touch_runtime', 'lock_bucket', 'rate']);
    const perRuntime = SCRIPT_NAMES.filter((n) => !bucketScripts.has(n));
    for (const name of perRuntime) {
      const src = scriptSource(name);
      expect(src, name).toContain(
        'local K_PENDING, K_DEADLINES, K_LEASES = KEYS[1], KEYS[2], KEYS[3]',
      );
      expect(src, name).not.toMatch(/--!include/);
      expect(src.split('\n')[0], name).toMatch(new RegExp(`^-- ${name}\\.lua: `));
    }
  });
});
