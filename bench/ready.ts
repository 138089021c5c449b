/** Waits for a node process the bench started to answer /readyz 200 (at most 20 s). */
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export async function untilReady(url: string, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  throw new Error(`${what} did not become ready`);
}
