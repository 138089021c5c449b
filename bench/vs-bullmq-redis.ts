/**
 * What bench/vs-bullmq.ts reads from Redis: command counts between two INFO commandstats
 * readings, and a MONITOR tap that tells the commands clients sent from the commands Lua
 * scripts (and functions) ran.
 *
 * Why MONITOR: on Redis 7.0 both INFO commandstats and INFO stats
 * total_commands_processed count every `redis.call` inside EVAL/EVALSHA/FCALL as a command
 * of its own (checked on 7.0.15: after `config resetstat`, one EVAL running SET, GET and
 * INCR adds 4 to total_commands_processed and 1 each to cmdstat_eval/set/get/incr), and
 * CLIENT LIST has no per-client command count before 7.2 (tot-cmds). MONITOR prints each
 * command once, with its source: `[db 127.0.0.1:port]` for a client's, `[db lua]` for one
 * a script ran. It costs Redis a formatted line per command, so the bench taps it only
 * in a pass of its own, never while it times anything. It counts only the connections of
 * the processes it is given (found through /proc: their socket inodes, and /proc/net/tcp
 * for the local port of each inode connected to Redis), so the other side's background
 * work and the bench's own INFO calls stay out; a script's commands follow the EVALSHA
 * that ran them (a script runs alone), so they go to that command's connection.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import type { Redis } from 'ioredis';
import { commandCalls } from './proc-stats.js';

export { commandCalls };

/** Calls per command between two readings, without the bench's own INFO calls. */
export function callsDelta(
  before: Map<string, number>,
  after: Map<string, number>,
): { total: number; byCommand: Map<string, number> } {
  const byCommand = new Map<string, number>();
  let total = 0;
  for (const [name, calls] of after) {
    if (name === 'info') continue;
    const delta = calls - (before.get(name) ?? 0);
    if (delta > 0) {
      byCommand.set(name, delta);
      total += delta;
    }
  }
  return { total, byCommand };
}

export interface MonitorCounts {
  /** Commands sent by clients (each EVALSHA/FCALL once, MULTI and EXEC included). */
  client: number;
  /** Commands run by scripts and functions. */
  script: number;
  /** Client commands by name (lower case). */
  byCommand: Map<string, number>;
}

const LINE = /^\+\d+\.\d+ \[\d+ (\S+)\] "([^"]*)"/;

/** Local ports of the TCP connections to `redisPort` that the processes `pids` hold. */
export function redisClientPorts(pids: number[], redisPort: number): Set<number> {
  const portOfInode = new Map<string, number>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = Number.parseInt((f[1] as string).split(':')[1] as string, 16);
    const remote = Number.parseInt((f[2] as string).split(':')[1] as string, 16);
    if (remote === redisPort) portOfInode.set(f[9] as string, local);
  }
  const ports = new Set<number>();
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      const port = inode === undefined ? undefined : portOfInode.get(inode);
      if (port !== undefined) ports.add(port);
    }
  }
  return ports;
}

/** A MONITOR connection counting what it sees until `stop()`. */
export class MonitorTap {
  readonly #counts: MonitorCounts = { client: 0, script: 0, byCommand: new Map() };
  #rest = '';
  #ok = false;
  #marker: { text: string; seen: () => void } | undefined;
  /** Whether the last client command seen came from one of `ports` (its script's too). */
  #mine = false;

  private constructor(
    readonly sock: net.Socket,
    readonly ports: Set<number>,
  ) {}

  /**
   * Connects, sends MONITOR and resolves once Redis said +OK (counting starts then).
   * Counts the commands of the client connections whose local port is in `ports`.
   */
  static start(host: string, port: number, ports: Set<number>): Promise<MonitorTap> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host, port });
      const tap = new MonitorTap(sock, ports);
      sock.setEncoding('latin1');
      sock.once('error', reject);
      sock.on('connect', () => sock.write('MONITOR\r\n'));
      sock.on('data', (chunk: string) => {
        if (tap.#feed(chunk)) resolve(tap);
      });
    });
  }

  /** Returns true once the +OK has been seen. */
  #feed(chunk: string): boolean {
    const lines = (this.#rest + chunk).split('\r\n');
    this.#rest = lines.pop() ?? '';
    for (const line of lines) {
      if (!this.#ok) {
        if (line === '+OK') this.#ok = true;
        continue;
      }
      if (this.#marker && line.includes(this.#marker.text)) {
        this.#marker.seen();
        this.#marker = undefined;
        continue;
      }
      const m = LINE.exec(line);
      if (!m) continue;
      const source = m[1] as string;
      if (source === 'lua') {
        if (this.#mine) this.#counts.script++;
        continue;
      }
      this.#mine = this.ports.has(Number(source.slice(source.lastIndexOf(':') + 1)));
      if (this.#mine) {
        this.#counts.client++;
        const name = (m[2] as string).toLowerCase();
        this.#counts.byCommand.set(name, (this.#counts.byCommand.get(name) ?? 0) + 1);
      }
    }
    return this.#ok;
  }

  /**
   * Sends a marker (ECHO through `redis`), waits until the tap has read it, so every
   * command before it was counted, then closes the tap and returns what it counted.
   */
  async stop(redis: Redis): Promise<MonitorCounts> {
    const text = `vs-bullmq-marker-${Math.random().toString(36).slice(2)}`;
    const seen = new Promise<void>((resolve) => {
      this.#marker = { text, seen: resolve };
    });
    await redis.echo(text);
    await seen;
    this.sock.destroy();
    return this.#counts;
  }
}
