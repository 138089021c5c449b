/**
 * The chaos suite's ordering rules catch what they are meant to: runs of one key at
 * once, and a request run before one created ahead of it; the histories a lapsed lease
 * legitimately leaves, and creates that raced, pass.
 */
import { describe, expect, it } from 'vitest';
import { checkOrdering, type KeyedCreate, type Outcome, type Run } from './ordering-checks.js';

const create = (id: string, sent: number, acked: number, line = 'rt/k'): KeyedCreate => ({
  id,
  line,
  sent,
  acked,
});
const run = (id: string, epoch: number, start: number, end: number | null): Run => ({
  id,
  epoch,
  daemon: 0,
  start,
  end,
});
const outcomes = (...xs: [string, string, number][]) =>
  new Map<string, Outcome>(xs.map(([id, status, epoch]) => [id, { status, epoch }]));

describe('chaos ordering rules', () => {
  it('pass one at a time in creation order, and count the held', () => {
    const creates = [create('a', 1, 2), create('b', 3, 4), create('c', 5, 6)];
    const runs = [run('a', 1, 3, 10), run('b', 1, 11, 12), run('c', 1, 13, 14)];
    const got = checkOrdering(
      creates,
      runs,
      outcomes(['a', 'completed', 1], ['b', 'completed', 1], ['c', 'completed', 1]),
    );
    expect(got.failures).toEqual([]);
    expect(got.figures).toEqual({
      lines: 1,
      keyed: 3,
      completed: 3,
      orderedPairs: 3,
      heldBehind: 2,
      redelivered: 0,
    });
  });

  it('pass a lapsed lease: the abandoned run goes on beside what replaced it', () => {
    // a's first attempt lost its lease and was redelivered (epoch 2); it still ran when
    // the redelivery ended and b started. c's head timed out while its run went on.
    const creates = [create('a', 1, 2), create('b', 3, 4), create('c', 5, 6), create('d', 7, 8)];
    const runs = [
      run('a', 1, 9, 30),
      run('a', 2, 10, 11),
      run('b', 1, 12, 13),
      run('c', 1, 14, 40),
      run('d', 1, 15, 16),
    ];
    const got = checkOrdering(
      creates,
      runs,
      outcomes(
        ['a', 'completed', 2],
        ['b', 'completed', 1],
        ['c', 'timeout', 1],
        ['d', 'completed', 1],
      ),
    );
    expect(got.failures).toEqual([]);
    expect(got.figures.redelivered).toBe(1);
  });

  it('pass creates that raced: either may go first', () => {
    const creates = [create('a', 1, 4), create('b', 2, 3)];
    const runs = [run('b', 1, 5, 6), run('a', 1, 7, 8)];
    const got = checkOrdering(
      creates,
      runs,
      outcomes(['a', 'completed', 1], ['b', 'completed', 1]),
    );
    expect(got.failures).toEqual([]);
    expect(got.figures.orderedPairs).toBe(0);
  });

  it('find two accepted runs of one key at once (K1)', () => {
    const creates = [create('a', 1, 4), create('b', 2, 3)];
    const runs = [run('a', 1, 5, 8), run('b', 1, 6, 7)];
    const got = checkOrdering(
      creates,
      runs,
      outcomes(['a', 'completed', 1], ['b', 'completed', 1]),
    );
    expect(got.failures.join()).toMatch(/K1 b .* while a/);
  });

  it('find a later request run first, or beside, even when its run was not accepted (K2)', () => {
    const creates = [create('a', 1, 2), create('b', 3, 4)];
    const first = checkOrdering(
      creates,
      [run('b', 1, 5, 6), run('a', 1, 7, 8)],
      outcomes(['a', 'completed', 1], ['b', 'completed', 1]),
    );
    expect(first.failures.join()).toMatch(/K2 b .* before a's accepted run/);
    const beside = checkOrdering(
      creates,
      [run('a', 1, 5, 9), run('b', 1, 6, 7), run('b', 2, 10, 11)],
      outcomes(['a', 'completed', 1], ['b', 'completed', 2]),
    );
    expect(beside.failures).toHaveLength(1);
    expect(beside.failures.join()).toMatch(/K2 b .* epoch 1/);
  });

  it('keep lines apart, and find a completed request with no run at its epoch', () => {
    const creates = [create('a', 1, 2, 'rt/k1'), create('b', 3, 4, 'rt/k2')];
    const runs = [run('a', 1, 5, 8), run('b', 1, 6, 7)];
    const apart = checkOrdering(
      creates,
      runs,
      outcomes(['a', 'completed', 1], ['b', 'completed', 1]),
    );
    expect(apart.failures).toEqual([]);
    const missing = checkOrdering(
      creates,
      runs,
      outcomes(['a', 'completed', 2], ['b', 'completed', 1]),
    );
    expect(missing.failures.join()).toMatch(/a: completed at epoch 2.*none/);
  });
});
