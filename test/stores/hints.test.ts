/**
 * The update hint's wire form (stores/hints.ts): the record rides along when small, a
 * reader that wants only the head parses only the head, and anything else is no hint.
 */
import { describe, expect, it } from 'vitest';
import { encodeHint, encodeOutputHint, HINT_RECORD_BYTES, parseHint } from '../../stores/hints.js';
import { MemoryStore } from '../../stores/memory/store.js';

const RT = { workspace: 'acme', runtime: 'laptop' };

describe('update hints', () => {
  it('carry the record, and give the head alone without parsing it', async () => {
    const store = new MemoryStore();
    const { request } = await store.create(
      RT,
      { kind: 'k', payload: { a: [1] } },
      { createdBy: 'c' },
    );
    const message = encodeHint(request);
    expect(parseHint(message)).toEqual({
      id: request.id,
      status: 'pending',
      epoch: 0,
      record: request,
    });
    expect(parseHint(message, false)).toEqual({ id: request.id, status: 'pending', epoch: 0 });
    // The head is read from the front of the message: a broken record cannot spoil it.
    const broken = `${message.slice(0, message.indexOf(',"record":'))},"record":[oops}`;
    expect(parseHint(broken, false)).toEqual({ id: request.id, status: 'pending', epoch: 0 });
    expect(parseHint(broken)).toBeNull();
  });

  it('leave a large record out', async () => {
    const store = new MemoryStore();
    const payload = 'x'.repeat(HINT_RECORD_BYTES);
    const { request } = await store.create(RT, { kind: 'k', payload }, { createdBy: 'c' });
    expect(parseHint(encodeHint(request))).toEqual({ id: request.id, status: 'pending', epoch: 0 });
  });

  it('of output give the head alone without parsing the data, whatever keys it has', () => {
    // Chunk data is any JSON: here with a "record" key, which a head-only parse must not
    // take for the record's.
    const chunks = [
      { offset: 4, epoch: 2, data: '{"a":1,"record":[1]}' },
      { offset: 5, epoch: 2, data: '{"data":[2]}' },
    ];
    const message = encodeOutputHint('req_1', 2, chunks);
    const head = { id: 'req_1', status: 'running', epoch: 2 };
    expect(parseHint(message)).toEqual({
      ...head,
      output: { from: 4, count: 2, data: [{ a: 1, record: [1] }, { data: [2] }] },
    });
    expect(parseHint(message, false)).toEqual({ ...head, output: { from: 4, count: 2 } });
    const broken = `${message.slice(0, message.indexOf(',"data":['))},"data":[oops}}`;
    expect(parseHint(broken, false)).toEqual({ ...head, output: { from: 4, count: 2 } });
  });

  it('are null for what is not a hint', () => {
    expect(parseHint('1')).toBeNull();
    expect(parseHint('not json')).toBeNull();
    expect(parseHint('{"status":"pending"}')).toBeNull();
  });
});
