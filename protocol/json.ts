/**
 * JSON values as the protocol carries them (payloads and results). No zod here: the
 * browser bundle and the daemon SDK use the check without the schema library.
 */

/** Payloads and results nest at most this deep (deeper input is refused, not crashed on). */
export const MAX_JSON_DEPTH = 64;

export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/**
 * A JSON value nested at most `maxDepth` levels, checked without recursion. Unlike
 * `z.json()` it neither recurses (a deeply nested body cannot overflow the stack) nor
 * rebuilds the value (a `__proto__` key survives as the plain key JSON.parse made it).
 */
export function isJsonValue(value: unknown, maxDepth = MAX_JSON_DEPTH): value is JsonValue {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (v === null || typeof v === 'string' || typeof v === 'boolean') continue;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return false;
      continue;
    }
    if (typeof v !== 'object' || depth >= maxDepth) return false;
    if (Array.isArray(v)) {
      for (const item of v) stack.push([item, depth + 1]);
      continue;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return false;
    for (const item of Object.values(v)) stack.push([item, depth + 1]);
  }
  return true;
}
