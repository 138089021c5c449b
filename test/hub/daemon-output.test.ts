import { describe, expect, it } from 'vitest';
import { OutputWriter } from '../../hub/daemon-output.js';
import type { OutputWrite } from '../../stores/store.js';

/** A writer whose store calls stay out until the test lets them finish. */
function heldWriter(maxChunks: number) {
  const stored: number[] = [];
  const calls: (() => void)[] = [];
  const writer = new OutputWriter(
    (_id, _epoch, writes) =>
      new Promise<void>((resolve) => {
        calls.push(() => {
          stored.push(...writes.map((w) => w.seq));
          resolve();
        });
      }),
    1 << 20,
    maxChunks,
    1,
  );
  const chunk = (seq: number): OutputWrite => ({ seq, data: `"chunk ${seq}"` });
  /** Lets the oldest call finish, and waits for the writer to move on. */
  const finish = async () => {
    (calls.shift() as () => void)();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { writer, stored, chunk, finish, calls };
}

describe('OutputWriter', () => {
  it('refuses the frames after a refused one until that one is sent again, so the store never sees a gap', async () => {
    const { writer, stored, chunk, finish } = heldWriter(2);
    expect(writer.offer('a', 1, chunk(1))).toBe(true); // in a store call
    expect(writer.offer('a', 1, chunk(2))).toBe(true); // waiting
    expect(writer.offer('a', 1, chunk(3))).toBe(false); // full: refused
    await finish(); // 1 stored; 2 goes out; room for one again
    expect(writer.offer('a', 1, chunk(4))).toBe(false); // after a refused seq: refused too
    expect(writer.offer('b', 1, chunk(1))).toBe(true); // another attempt is not held back
    await finish();
    await finish();
    expect(writer.offer('a', 1, chunk(3))).toBe(true); // the resend, in order
    expect(writer.offer('a', 1, chunk(4))).toBe(true);
    await finish();
    await finish();
    expect(stored).toEqual([1, 2, 1, 3, 4]);
  });

  it('holds an attempt from the lowest refused seq, and a resend from before it clears the hold', async () => {
    const { writer, stored, chunk, finish } = heldWriter(1);
    expect(writer.offer('a', 1, chunk(1))).toBe(true);
    expect(writer.offer('a', 1, chunk(2))).toBe(false);
    expect(writer.offer('a', 1, chunk(3))).toBe(false);
    await finish();
    expect(writer.offer('a', 1, chunk(3))).toBe(false); // still after the hole at 2
    expect(writer.offer('a', 1, chunk(1))).toBe(true); // a resend from the first unacknowledged
    await finish();
    expect(writer.offer('a', 1, chunk(2))).toBe(true);
    await finish();
    expect(stored).toEqual([1, 1, 2]);
  });
});
