import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalHash } from '../crypto/hash.ts';
import { LedgerError } from './errors.ts';
import { faultTolerance, genesisHash, parseGenesis, quorum, validatorSetHash } from './genesis.ts';
import { createTestNetwork, seededKey } from './testing.ts';

const base = JSON.parse(JSON.stringify(createTestNetwork({ seed: 'genesis-tests', validators: 7 }).genesis));

/** A deep copy of the valid genesis with one change applied. */
// biome-ignore lint/suspicious/noExplicitAny: the tests break a parsed JSON document field by field.
function variant(change: (g: any) => void): unknown {
  const copy = JSON.parse(JSON.stringify(base));
  change(copy);
  return copy;
}

function expectInvalid(json: unknown, field: string, pattern?: RegExp): void {
  assert.throws(
    () => parseGenesis(json),
    (error: unknown) => {
      assert.ok(error instanceof LedgerError);
      assert.equal(error.code, 'GENESIS_INVALID');
      assert.equal(error.data.field, field, error.message);
      if (pattern !== undefined) assert.match(error.message, pattern);
      assert.match(error.message, /fix the genesis file/);
      return true;
    },
  );
}

describe('parseGenesis', () => {
  it('accepts a valid genesis and returns it unchanged', () => {
    assert.deepEqual(parseGenesis(base), base);
  });

  it('requires n = 3f+1 validators, at least 4', () => {
    expectInvalid(
      variant((g) => g.validators.splice(3)),
      'validators',
      /between 4 and/,
    );
    expectInvalid(
      variant((g) => g.validators.splice(5)),
      'validators',
      /3f\+1/,
    );
  });

  it('requires validator ids 0..n-1 in order', () => {
    expectInvalid(
      variant((g) => {
        g.validators[2].id = 3;
      }),
      'validators[2].id',
      /expected 2/,
    );
  });

  it('requires 32-byte hex keys', () => {
    expectInvalid(
      variant((g) => {
        g.validators[1].publicKey = 'abcd';
      }),
      'validators[1].publicKey',
    );
    expectInvalid(
      variant((g) => {
        g.admins[0].publicKey = g.admins[0].publicKey.toUpperCase();
      }),
      'admins[0].publicKey',
    );
  });

  it('requires unique keys, addresses and URLs', () => {
    expectInvalid(
      variant((g) => {
        g.validators[3].publicKey = g.validators[0].publicKey;
      }),
      'validators[3].publicKey',
      /duplicates validators\[0\]/,
    );
    expectInvalid(
      variant((g) => {
        g.validators[3].peerAddress = g.validators[1].peerAddress;
      }),
      'validators[3].peerAddress',
    );
    expectInvalid(
      variant((g) => {
        g.validators[3].apiUrl = g.validators[1].apiUrl;
      }),
      'validators[3].apiUrl',
    );
    expectInvalid(
      variant((g) => {
        g.admins[1].id = g.admins[0].id;
      }),
      'admins[1].id',
    );
    expectInvalid(
      variant((g) => {
        g.admins[1].publicKey = g.admins[0].publicKey;
      }),
      'admins[1].publicKey',
    );
  });

  it('requires valid addresses and http(s) URLs', () => {
    expectInvalid(
      variant((g) => {
        g.validators[0].peerAddress = 'localhost';
      }),
      'validators[0].peerAddress',
    );
    expectInvalid(
      variant((g) => {
        g.validators[0].apiUrl = 'ftp://x';
      }),
      'validators[0].apiUrl',
    );
    expectInvalid(
      variant((g) => {
        g.validators[0].apiUrl = 'not a url';
      }),
      'validators[0].apiUrl',
    );
  });

  it('requires admins and a threshold between 1 and their number', () => {
    expectInvalid(
      variant((g) => {
        g.admins = [];
      }),
      'admins',
    );
    expectInvalid(
      variant((g) => {
        g.releaseThreshold = 0;
      }),
      'releaseThreshold',
    );
    expectInvalid(
      variant((g) => {
        g.releaseThreshold = g.admins.length + 1;
      }),
      'releaseThreshold',
    );
    expectInvalid(
      variant((g) => {
        g.releaseThreshold = 1.5;
      }),
      'releaseThreshold',
    );
  });

  it('requires exactly one device-facing and one validator-facing config source on different URLs', () => {
    expectInvalid(
      variant((g) => {
        g.configSources[1].role = 'device-facing';
      }),
      'configSources',
      /exactly one device-facing .*found 2/,
    );
    expectInvalid(
      variant((g) => {
        g.configSources[1].url = g.configSources[0].url;
      }),
      'configSources[1].url',
    );
    expectInvalid(
      variant((g) => {
        g.configSources[1].role = 'primary';
      }),
      'configSources[1].role',
    );
  });

  it('requires positive policy numbers in range', () => {
    expectInvalid(
      variant((g) => {
        g.policy.heartbeatIntervalMs = 0;
      }),
      'policy.heartbeatIntervalMs',
    );
    expectInvalid(
      variant((g) => {
        g.policy.inlineContentBytesMax = -1;
      }),
      'policy.inlineContentBytesMax',
    );
    expectInvalid(
      variant((g) => {
        g.policy.inlineContentBytesMax = 1e9;
      }),
      'policy.inlineContentBytesMax',
    );
    expectInvalid(
      variant((g) => {
        g.policy.headerAgeMsMax = g.policy.heartbeatIntervalMs;
      }),
      'policy.headerAgeMsMax',
    );
    expectInvalid(
      variant((g) => {
        g.policy.allowUnauthenticatedCompat = 'yes';
      }),
      'policy.allowUnauthenticatedCompat',
    );
  });

  it('rejects unknown and missing fields and a non-object', () => {
    expectInvalid(
      variant((g) => {
        g.extra = 1;
      }),
      'genesis.extra',
      /unknown field/,
    );
    expectInvalid(
      variant((g) => {
        delete g.chainId;
      }),
      'genesis.chainId',
      /missing/,
    );
    expectInvalid(
      variant((g) => {
        g.validators[0].weight = 1;
      }),
      'validators[0].weight',
    );
    expectInvalid(
      variant((g) => {
        g.policy.turbo = true;
      }),
      'policy.turbo',
    );
    expectInvalid(
      variant((g) => {
        g.chainId = '';
      }),
      'chainId',
    );
    expectInvalid([], 'genesis');
  });
});

describe('genesis helpers', () => {
  it('computes f and the quorum for n = 3f+1', () => {
    assert.deepEqual([4, 7, 10, 13].map(faultTolerance), [1, 2, 3, 4]);
    assert.deepEqual([4, 7, 10, 13].map(quorum), [3, 5, 7, 9]);
  });

  it('hashes the genesis canonically, whatever its key order', () => {
    const reordered = Object.fromEntries(Object.entries(base).reverse());
    assert.equal(genesisHash(parseGenesis(reordered)), genesisHash(parseGenesis(base)));
    assert.equal(genesisHash(base), canonicalHash(base));
  });

  it('commits the validator set to ids and keys only', () => {
    const g = parseGenesis(base);
    const moved = parseGenesis(
      variant((x) => {
        x.validators[0].apiUrl = 'http://10.0.0.1:5001';
      }),
    );
    assert.equal(validatorSetHash(moved.validators), validatorSetHash(g.validators));
    const rekeyed = parseGenesis(
      variant((x) => {
        x.validators[0].publicKey = seededKey('new').publicKeyHex;
      }),
    );
    assert.notEqual(validatorSetHash(rekeyed.validators), validatorSetHash(g.validators));
  });
});
