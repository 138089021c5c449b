/**
 * The checks both SDKs' modes tables get: the table holds exactly the moves the test
 * writes out, each of them is accepted, and every other pair of modes throws.
 */
import { expect, it } from 'vitest';

export function checksEveryMove<M extends string>(
  modes: readonly M[],
  table: Readonly<Record<M, readonly M[]>>,
  legal: Readonly<Record<M, readonly M[]>>,
  assertMove: (from: M, to: M) => void,
): void {
  const pairs = modes.flatMap((from) => modes.map((to) => [from, to] as const));

  it('has the modes and the moves written out here', () => {
    expect([...modes].sort()).toEqual(Object.keys(legal).sort());
    for (const mode of modes) expect([...table[mode]].sort()).toEqual([...legal[mode]].sort());
  });

  it.each(pairs.filter(([from, to]) => legal[from].includes(to)))(
    'accepts %s -> %s',
    (from, to) => {
      expect(() => assertMove(from, to)).not.toThrow();
    },
  );

  it.each(pairs.filter(([from, to]) => !legal[from].includes(to)))(
    'refuses %s -> %s',
    (from, to) => {
      expect(() => assertMove(from, to)).toThrow(`illegal mode change ${from} -> ${to}`);
    },
  );

  it('checks every pair: the legal ones and the refused ones add up', () => {
    const count = Object.values<readonly M[]>(legal).flat().length;
    expect(pairs.length).toBe(modes.length ** 2);
    expect(pairs.filter(([f, t]) => legal[f].includes(t))).toHaveLength(count);
  });
}
