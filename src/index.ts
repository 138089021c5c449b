/**
 * The package's entry: the daemon SDK, the node (to embed a hub), and the shared types.
 * The browser client is `switchboard/browser` (src/client/browser.ts), served by every
 * node at /client/browser.js.
 */
export type { DaemonRequest, Request, RuntimeInfo, Status } from '../protocol/index.js';
export {
  connectDaemon,
  Daemon,
  type DaemonOptions,
  type DaemonState,
  type Handler,
  type HandlerContext,
  OutputError,
  type OutputErrorCode,
} from './client/daemon.js';
export { type Config, loadConfig } from './config.js';
export { type NodeOptions, type SwitchboardNode, startNode } from './node.js';
