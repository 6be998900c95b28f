/**
 * `configchain sim` as a user runs it: a real process, its output and its exit status.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

function sim(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'sim', '--no-progress', ...args],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('configchain sim', () => {
  it('prints a summary and exits 0 when no seed finds a violation', () => {
    const r = sim(['--seeds', '3', '--seed', '11', '--n', '4']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /seeds {2,}3 \(n=4: 3;/);
    assert.match(r.stdout, /blocks committed {2,}\d+/);
    assert.match(r.stdout, /view changes/);
    assert.match(r.stdout, /faults injected/);
    assert.match(r.stdout, /no violations/);
  });

  it('exits 1 on a violation and prints the seed, the reproduce command and a trace, also to a file', () => {
    const r = sim(['--seed', '1', '--n', '4', '--broken', 'commit-on-2f']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /seed 1 FAILED/);
    assert.match(r.stderr, /reproduce: npm run sim -- --seed 1 --n 4 --byzantine \d --broken commit-on-2f/);
    assert.match(r.stderr, /last \d+ trace entries/);
    const file = /report written to (.+)\)/.exec(r.stderr)?.[1];
    assert.ok(file !== undefined && existsSync(file), 'the report file exists');
    assert.match(readFileSync(file, 'utf8'), /certificate/);
    assert.match(r.stdout, /certificate {2,}1/);
  });

  it('refuses more Byzantine replicas than f, saying why', () => {
    const r = sim(['--seed', '1', '--n', '4', '--byzantine', '2']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /more than f = 1/);
  });
});
