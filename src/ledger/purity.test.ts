import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function importsOf(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'([^']+)'/gms)].map((m) => m[1] as string);
}

const ledgerFiles = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
  .map((f) => join(here, f));

describe('layering', () => {
  it('keeps the ledger pure: no file system, network, clock or randomness', () => {
    for (const file of [...ledgerFiles, join(here, '../merkle/sparse.ts')]) {
      const text = readFileSync(file, 'utf8');
      for (const spec of importsOf(file)) {
        assert.ok(
          !/^node:(fs|net|http|https|child_process|worker_threads|dgram|tls)/.test(spec),
          `${file} imports ${spec}`,
        );
      }
      assert.ok(
        !/Date\.now\(|new Date\(|Math\.random\(|performance\.now\(/.test(text),
        `${file} reads a clock or randomness`,
      );
      assert.ok(!/\basync\b|\bawait\b/.test(text), `${file} is asynchronous`);
    }
  });

  it('lets the device reuse verifyStateProof with only the hash and encoding modules', () => {
    const specs = importsOf(join(here, '../merkle/sparse.ts'));
    assert.ok(specs.length > 0);
    for (const spec of specs) {
      assert.ok(spec === '../crypto/hash.ts' || spec.startsWith('../encoding/'), `sparse.ts imports ${spec}`);
    }
  });
});
