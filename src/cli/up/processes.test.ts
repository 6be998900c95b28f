import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { validatorNodeFlags } from './processes.ts';

describe('validatorNodeFlags', () => {
  it('keeps V8 GC helper threads only where a core is spare beyond the validators', () => {
    assert.deepEqual(validatorNodeFlags(4, 2), ['--single-threaded-gc']);
    assert.deepEqual(validatorNodeFlags(4, 4), ['--single-threaded-gc']);
    assert.deepEqual(validatorNodeFlags(4, 8), []);
    assert.deepEqual(validatorNodeFlags(1, 2), []);
  });

  it('gives flags this node accepts (a wrong one would stop every validator from starting)', () => {
    const flags = validatorNodeFlags(4, 2);
    const run = spawnSync(process.execPath, [...flags, '-e', 'process.stdout.write("ok")'], {
      encoding: 'utf8',
    });
    assert.equal(run.stderr, '');
    assert.equal(run.status, 0);
    assert.equal(run.stdout, 'ok');
  });
});
