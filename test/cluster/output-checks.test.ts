/**
 * The chaos suite's output rules catch what they are meant to: each broken rule on a
 * small hand-made history, and the histories a redelivery legitimately leaves pass.
 */
import { describe, expect, it } from 'vitest';
import type { Chunk } from '../helpers/output.js';
import { type AttemptLog, checkReassembled, checkStored } from './output-checks.js';

const sent = (epoch: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ e: epoch, k: i + 1 }));
const log = (epoch: number, n: number, resolvedUpTo = n): AttemptLog => ({
  daemon: epoch,
  sent: sent(epoch, n),
  resolvedUpTo,
  rejected: resolvedUpTo < n ? { lease_lost: n - resolvedUpTo } : {},
});
/** Stored chunks: `parts` as [epoch, count] in order, offsets from 1. */
const stored = (...parts: [number, number][]): Chunk[] => {
  const out: Chunk[] = [];
  for (const [epoch, count] of parts) {
    for (const data of sent(epoch, count)) out.push({ offset: out.length + 1, epoch, data });
  }
  return out;
};
const completed = (epoch: number) => ({ status: 'completed', epoch });

describe('chaos output rules', () => {
  it('pass a redelivery: an abandoned attempt stored part of what it sent', () => {
    const attempts = new Map([
      [1, log(1, 10, 3)],
      [2, log(2, 5)],
    ]);
    expect(checkStored('r', stored([1, 4], [2, 5]), completed(2), attempts)).toEqual([]);
    expect(checkStored('r', stored([2, 5]), completed(2), new Map([[2, log(2, 5)]]))).toEqual([]);
  });

  it('find a gap, a repeat, an epoch going back', () => {
    const attempts = new Map([
      [1, log(1, 3, 0)],
      [2, log(2, 3)],
    ]);
    const gap = stored([2, 3]);
    gap.splice(1, 1);
    expect(checkStored('r', gap, completed(2), attempts).join()).toMatch(/offset 3/);
    const repeat = stored([2, 3]);
    repeat.splice(1, 0, { ...(repeat[0] as Chunk) });
    expect(checkStored('r', repeat, completed(2), attempts).join()).toMatch(/offset 1/);
    const back = [...stored([2, 1]), { offset: 2, epoch: 1, data: { e: 1, k: 1 } }];
    expect(checkStored('r', back, completed(2), attempts).join()).toMatch(/epoch goes back/);
  });

  it('find a final attempt stored short, long, or out of order', () => {
    const attempts = new Map([[2, log(2, 4)]]);
    expect(checkStored('r', stored([2, 3]), completed(2), attempts).join()).toMatch(/acknowledged/);
    const short = new Map([[2, log(2, 4, 3)]]);
    expect(checkStored('r', stored([2, 3]), completed(2), short).join()).toMatch(/completed/);
    const swapped = stored([2, 4]);
    [swapped[1], swapped[2]] = [swapped[2] as Chunk, swapped[1] as Chunk];
    swapped.forEach((c, i) => {
      c.offset = i + 1;
    });
    expect(checkStored('r', swapped, completed(2), attempts).join()).toMatch(/not a prefix/);
  });

  it('find chunks of an attempt no daemon ran, or past the record', () => {
    const attempts = new Map([[2, log(2, 2)]]);
    expect(checkStored('r', stored([1, 1], [2, 2]), completed(2), attempts).join()).toMatch(
      /no daemon ran/,
    );
    expect(
      checkStored(
        'r',
        stored([2, 2], [3, 1]),
        completed(2),
        new Map([...attempts, [3, log(3, 1)]]),
      ).join(),
    ).toMatch(/past the record/);
  });

  it('compare a reader with the store chunk for chunk', () => {
    const all = stored([1, 2], [2, 3]);
    expect(
      checkReassembled(
        'r',
        'sse',
        all.map((c) => ({ ...c })),
        all,
      ),
    ).toEqual([]);
    expect(checkReassembled('r', 'sse', all.slice(0, 4), all).join()).toMatch(/#5/);
    expect(checkReassembled('r', 'sse', [...all, all[4] as Chunk], all).join()).toMatch(/#6/);
    const wrongEpoch = all.map((c) => ({ ...c, epoch: 2 }));
    expect(checkReassembled('r', 'sse', wrongEpoch, all).join()).toMatch(/#1/);
  });
});
