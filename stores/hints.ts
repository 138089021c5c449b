/**
 * Update hints: published on a runtime's `updates` channel after every transition, by
 * either store, as JSON `{id, status, epoch, record?}`. A hint only: it may be lost, and
 * whoever acts on one can read the record instead. `record` (the record as of that
 * transition, as a field list) is there when the store had it at hand and its values
 * total at most HINT_RECORD_BYTES, so a node that forwards a change to a client or
 * answers a long-poll with it need not read the record again. Both stores write the
 * keys in that order, record last, so a reader that needs only the head parses only it.
 *
 * An output write publishes `{id, status: "running", epoch, output: {from, count, data?}}`
 * instead: chunks `from .. from+count-1` of that epoch were stored, and `data` (their
 * values, in order) is there when they total at most HINT_RECORD_BYTES. Such a hint is
 * no state change: whoever waits for one ignores it.
 */
import type { Status } from '../protocol/index.js';
import type { RequestRecord } from './domain.js';
import { decodeRecord, encodeRecord } from './record-fields.js';
import type { StoredChunk } from './store.js';

/** Also in stores/redis/lua/includes/record.lua. */
export const HINT_RECORD_BYTES = 8192;

export interface UpdateHint {
  id: string;
  status: Status;
  epoch: number;
  /** The record as of this change (see the module header). */
  record?: RequestRecord;
  /** Set on an output hint (see the module header). */
  output?: OutputHint;
}

export interface OutputHint {
  from: number;
  count: number;
  /** The chunks' data as JSON values, when the hint carries them. */
  data?: unknown[];
}

const RECORD_KEY = ',"record":';
const OUTPUT_DATA_KEY = ',"data":[';

interface WireHint {
  id: string;
  status: Status;
  epoch: number;
  record?: string[];
  output?: OutputHint;
}

/**
 * The hint in a message; null if not a hint. `withRecord` false: the head alone (id,
 * status, epoch, and an output hint's from and count), with neither the record nor the
 * output data parsed, for a reader that acts on the head only. Both tails follow the
 * head, and neither key can occur earlier (any quote inside a JSON string is escaped),
 * so the first of the two keys is where the head ends.
 */
export function parseHint(message: string, withRecord = true): UpdateHint | null {
  let wire: WireHint;
  let text = message;
  if (!withRecord) {
    const record = message.indexOf(RECORD_KEY);
    const data = message.indexOf(OUTPUT_DATA_KEY);
    if (data !== -1 && (record === -1 || data < record)) text = `${message.slice(0, data)}}}`;
    else if (record !== -1) text = `${message.slice(0, record)}}`;
  }
  try {
    wire = JSON.parse(text) as WireHint;
  } catch {
    return null;
  }
  if (typeof wire?.id !== 'string') return null;
  const hint: UpdateHint = { id: wire.id, status: wire.status, epoch: wire.epoch };
  if (wire.output) hint.output = wire.output;
  if (withRecord && Array.isArray(wire.record)) hint.record = decodeRecord(wire.record);
  return hint;
}

/** The hint for a record's change, carrying the record when it is small enough. */
export function encodeHint(r: RequestRecord): string {
  const wire: WireHint = { id: r.id, status: r.status, epoch: r.epoch };
  const flat = encodeRecord(r);
  let size = 0;
  for (let i = 1; i < flat.length; i += 2) size += (flat[i] as string).length;
  if (size <= HINT_RECORD_BYTES) wire.record = flat;
  return JSON.stringify(wire);
}

/** The hint for stored output chunks (all of one epoch, consecutive offsets). */
export function encodeOutputHint(
  id: string,
  epoch: number,
  chunks: readonly StoredChunk[],
): string {
  const first = chunks[0];
  if (!first) throw new Error('an output hint needs a chunk');
  // UTF-8 bytes, as output.lua counts them (`#data`) and as the byte limit does.
  let size = 0;
  for (const c of chunks) size += Buffer.byteLength(c.data);
  const head = `{"id":${JSON.stringify(id)},"status":"running","epoch":${epoch},"output":{"from":${first.offset},"count":${chunks.length}`;
  if (size > HINT_RECORD_BYTES) return `${head}}}`;
  return `${head},"data":[${chunks.map((c) => c.data).join(',')}]}}`;
}
