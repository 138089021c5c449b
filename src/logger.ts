/** JSON logs (pino): one logger per node, children per request and per socket. */
import { type Logger, pino } from 'pino';

export function createLogger(level: string, nodeId: string): Logger {
  return pino({ level, base: { node: nodeId } });
}
