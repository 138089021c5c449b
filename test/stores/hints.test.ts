/**
 * The update hint's wire form (stores/hints.ts): the record rides along when small, a
 * reader that wants only the head parses only the head, and anything else is no hint.
 */
import { describe, expect, it } from 'vitest';
import { encodeHint, HINT_RECORD_BYTES, parseHint } from '../../stores/hints.js';
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

  it('are null for what is not a hint', () => {
    expect(parseHint('1')).toBeNull();
    expect(parseHint('not json')).toBeNull();
    expect(parseHint('{"status":"pending"}')).toBeNull();
  });
});
