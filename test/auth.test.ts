/** Tokens: round trip, and every way a token can be wrong answers the same 401. */
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  Auth,
  AuthError,
  bearerToken,
  singleAuthorization,
  VERIFIED_CACHE_SIZE,
} from '../src/auth.js';
import { toHttpError } from '../src/http/errors.js';
import { rawHeaderValues } from '../src/http/raw-headers.js';

const SECRET = 'a-test-secret-that-is-long-enough-32b';
const auth = new Auth(SECRET);
const key = new TextEncoder().encode(SECRET);

async function rejects401(token: string): Promise<void> {
  const err = await auth.verify(token).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AuthError);
  expect(err).toMatchObject({ code: 'unauthorized', message: 'missing, invalid or expired token' });
  expect(toHttpError(err)).toMatchObject({ status: 401, code: 'unauthorized' });
}

describe('Auth', () => {
  it('round-trips client and daemon tokens', async () => {
    const client = await auth.sign({ sub: 'alice', ws: 'acme', role: 'client' }, '30d');
    expect(await auth.verify(client)).toEqual({ sub: 'alice', workspace: 'acme', role: 'client' });
    const daemon = await auth.sign({ sub: 'd', ws: 'acme', role: 'daemon', rt: 'laptop' }, 3600);
    expect(await auth.verify(daemon)).toEqual({
      sub: 'd',
      workspace: 'acme',
      role: 'daemon',
      runtime: 'laptop',
    });
  });

  describe('remembering verified tokens', () => {
    afterEach(() => vi.useRealTimers());

    it('answers a token seen before without a new verify, and only until its exp', async () => {
      vi.useFakeTimers({ toFake: ['Date'] });
      const fresh = new Auth(SECRET);
      const token = await fresh.sign({ sub: 'a', ws: 'w', role: 'client' }, 60);
      const first = await fresh.verify(token);
      expect(await fresh.verify(token)).toBe(first);
      // Past exp and the clock tolerance: a remembered token must not outlive its exp.
      vi.setSystemTime(Date.now() + 66_000);
      const err = await fresh.verify(token).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthError);
    });

    it('keeps at most VERIFIED_CACHE_SIZE tokens, and a dropped one still verifies', async () => {
      const fresh = new Auth(SECRET);
      const first = await fresh.sign({ sub: 's0', ws: 'w', role: 'client' }, 600);
      const p0 = await fresh.verify(first);
      for (let i = 1; i <= VERIFIED_CACHE_SIZE; i++) {
        await fresh.verify(await fresh.sign({ sub: `s${i}`, ws: 'w', role: 'client' }, 600));
      }
      const again = await fresh.verify(first);
      expect(again).toEqual(p0);
      expect(again).not.toBe(p0); // verified anew: the oldest was dropped
    });
  });

  it('sets exp from a ttl in seconds', async () => {
    const token = await auth.sign({ sub: 'a', ws: 'w', role: 'client' }, 120);
    const payload = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString());
    expect(payload.exp - Math.floor(Date.now() / 1000)).toBeGreaterThanOrEqual(119);
    expect(payload.exp - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(120);
  });

  it('rejects a forged signature', async () => {
    const other = new Auth('another-secret-that-is-long-enough-32');
    await rejects401(await other.sign({ sub: 'a', ws: 'w', role: 'client' }, '1h'));
    const token = await auth.sign({ sub: 'a', ws: 'w', role: 'client' }, '1h');
    const [header, , signature] = token.split('.');
    const tampered = Buffer.from(
      JSON.stringify({ sub: 'a', ws: 'other', role: 'client', exp: 9e9 }),
    ).toString('base64url');
    await rejects401(`${header}.${tampered}.${signature}`);
  });

  it('rejects an expired token', async () => {
    const expired = await new SignJWT({ ws: 'w', role: 'client' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('a')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(key);
    await rejects401(expired);
  });

  it("rejects alg 'none', other algorithms and tokens without exp", async () => {
    const none = new UnsecuredJWT({ ws: 'w', role: 'client' })
      .setSubject('a')
      .setExpirationTime('1h')
      .encode();
    await rejects401(none);
    const hs512 = await new SignJWT({ ws: 'w', role: 'client' })
      .setProtectedHeader({ alg: 'HS512' })
      .setSubject('a')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET.repeat(2)));
    await rejects401(hs512);
    const noExp = await new SignJWT({ ws: 'w', role: 'client' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('a')
      .sign(key);
    await rejects401(noExp);
  });

  it('rejects malformed tokens and bad claims', async () => {
    for (const token of ['', 'abc', 'a.b.c', 'a.b']) await rejects401(token);
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(key);
    await rejects401(await sign({ sub: 'd', ws: 'w', role: 'daemon' }));
    await rejects401(await sign({ sub: 'd', ws: 'w', role: 'daemon', rt: 'bad runtime' }));
    await rejects401(await sign({ sub: 'a', ws: 'w/x', role: 'client' }));
    await rejects401(await sign({ sub: 'a', ws: 'w', role: 'admin' }));
    await rejects401(await sign({ ws: 'w', role: 'client' }));
  });

  it('refuses to sign invalid claims or a short secret', async () => {
    await expect(auth.sign({ sub: 'd', ws: 'w', role: 'daemon' }, '1h')).rejects.toThrow(/rt/);
    await expect(auth.sign({ sub: 'a', ws: 'w{x}', role: 'client' }, '1h')).rejects.toThrow(/ws/);
    await expect(auth.sign({ sub: 'a', ws: 'w', role: 'client' }, 0)).rejects.toThrow(/ttl/);
    expect(() => new Auth('short')).toThrow(/32 bytes/);
  });
});

describe('bearerToken', () => {
  it('reads the Authorization header first, then access_token', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('bearer  abc ')).toBe('abc');
    expect(bearerToken('Bearer abc', 'q')).toBe('abc');
    expect(bearerToken(undefined, 'q')).toBe('q');
    expect(bearerToken(null, null)).toBeUndefined();
    expect(bearerToken('Basic abc', 'q')).toBeUndefined();
    expect(bearerToken('Bearer', undefined)).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(undefined, '')).toBeUndefined();
  });
});

describe('singleAuthorization', () => {
  it('takes none or one Authorization header, and refuses two, even identical, with 401', () => {
    expect(singleAuthorization([])).toBeUndefined();
    expect(singleAuthorization(['Bearer a'])).toBe('Bearer a');
    for (const two of [
      ['Bearer a', 'Bearer a'],
      ['Bearer a', 'Bearer b'],
    ]) {
      const err = (() => {
        try {
          singleAuthorization(two);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(AuthError);
      expect(toHttpError(err)).toMatchObject({ status: 401, code: 'unauthorized' });
    }
    expect(
      rawHeaderValues(['Host', 'h', 'AUTHORIZATION', 'x', 'authorization', 'y'], 'authorization'),
    ).toEqual(['x', 'y']);
  });
});
