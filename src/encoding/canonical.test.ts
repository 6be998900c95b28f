import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sha256Hex } from '../crypto/hash.ts';
import { canonicalString } from './canonical.ts';

describe('RFC 8785 canonical JSON', () => {
  it('sorts keys and formats numbers as ECMAScript does', () => {
    assert.equal(
      canonicalString({ b: [1e21, 0.5, -0], a: 'é', c: null }),
      '{"a":"é","b":[1e+21,0.5,0],"c":null}',
    );
  });

  it('refuses values without an exact JSON form', () => {
    assert.throws(() => canonicalString({ a: undefined }), /undefined/);
    assert.throws(() => canonicalString({ a: Number.NaN }), /no JSON form/);
    assert.throws(() => canonicalString({ a: new Uint8Array(2) }), /encoded first/);
  });

  it('hashes with SHA-256 (the article config "1")', () => {
    assert.equal(sha256Hex('1'), '6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b');
  });
});
