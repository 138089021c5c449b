/**
 * Update hints: published on a runtime's `updates` channel after every transition, by
 * either store, as JSON `{id, status, epoch, record?}`. A hint only: it may be lost, and
 * whoever acts on one can read the record instead. `record` (the record as of that
 * transition, as a field list) is there when the store had it at hand and its values
 * total at most HINT_RECORD_BYTES, so a node that forwards a change to a client or
 * answers a long-poll with it need not read the record again. Both stores write the
 * keys in that order, record last, so a reader that needs only the head parses only it.
 */
import type { Status } from '../protocol/index.js';
import type { RequestRecord } from './domain.js';
import { decodeRecord, encodeRecord } from './record-fields.js';

/** Also in stores/redis/lua/includes/record.lua. */
export const HINT_RECORD_BYTES = 8192;

export interface UpdateHint {
  id: string;
  status: Status;
  epoch: number;
  /** The record as of this change (see the module header). */
  record?: RequestRecord;
}

const RECORD_KEY = ',"record":';

interface WireHint {
  id: string;
  status: Status;
  epoch: number;
  record?: string[];
}

/** The hint in a message, with its record decoded when `withRecord`; null if not a hint. */
export function parseHint(message: string, withRecord = true): UpdateHint | null {
  let wire: WireHint;
  const cut = withRecord ? -1 : message.indexOf(RECORD_KEY);
  try {
    wire = JSON.parse(cut === -1 ? message : `${message.slice(0, cut)}}`) as WireHint;
  } catch {
    return null;
  }
  if (typeof wire?.id !== 'string') return null;
  const hint: UpdateHint = { id: wire.id, status: wire.status, epoch: wire.epoch };
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
