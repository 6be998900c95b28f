/**
 * Acceptance for `configchain up --demo-only` (what `npm start -- --demo-only` runs): the real
 * command on a temporary directory with a random base port, as its own process, starting real
 * validator and config-server processes. It must print the demo, exit 0, and leave every
 * validator with the same chain; run again on the same network, it must expect what is true then.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { findFreeBasePort, paths } from '../../src/node/layout.ts';
import { openSqliteStore } from '../../src/storage/sqlite.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Run {
  readonly code: number | null;
  readonly output: string;
}

/** Runs `up --demo-only`; basePort undefined leaves the option out (an existing network keeps its ports). */
function runUp(dir: string, basePort: number | undefined, timeoutMs = 120_000): Promise<Run> {
  return new Promise((done, fail) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(repoRoot, 'src/cli/main.ts'),
        'up',
        '--dir',
        dir,
        ...(basePort === undefined ? [] : ['--base-port', String(basePort)]),
        '--demo-only',
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      fail(new Error(`up --demo-only did not finish in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
}

/** The device's reports the device demo printed: [version, status] in order. */
function deviceReports(output: string): [number, string][] {
  return [...output.matchAll(/^ {2}device-1 reported version (\d+) (\w+) \(seq \d+, block \d+\)/gm)].map(
    (m) => [Number(m[1]), m[2] ?? ''],
  );
}

/** The answers printed after each "-> " line, in order. */
function answers(output: string): string[] {
  return [...output.matchAll(/^ {2}-> (.*)$/gm)].map((m) => m[1] ?? '');
}

function storedChain(dir: string, id: number): string[] {
  const store = openSqliteStore(paths.database(dir, id));
  try {
    const tip = store.tip();
    const hashes: string[] = [];
    for (let h = 0; h <= tip.height; h += 64) {
      for (const b of store.blocks(h, 64)) hashes.push(b.hash);
    }
    return hashes;
  } finally {
    store.close();
  }
}

describe('configchain up --demo-only', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-up-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the demo, exits 0, and every validator holds the same chain', async () => {
    let run: Run | undefined;
    // A free base port can still be taken by a parallel test before up binds it: retry on another.
    for (let attempt = 0; attempt < 3; attempt++) {
      const basePort = await findFreeBasePort(4);
      run = await runUp(dir, basePort);
      if (run.code === 0 || !/EADDRINUSE|cannot listen/.test(run.output)) break;
      rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(run);
    assert.equal(run.code, 0, run.output);
    assert.deepEqual(answers(run.output), [
      '200 Success: Hash is valid. New block was added to the chain.',
      '200 Success: Hash is valid. New block was added to the chain.',
      '200 Success: Current hash is valid',
      '200 Failure: Hash is invalid. Please try again.',
    ]);
    assert.match(run.output, /sha256 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b/);
    // The device part: device-1 is enrolled, its agent process applies versions 1..5 of "fleet"
    // as they are published, and each report is on the ledger.
    assert.match(run.output, /Enrolling device device-1 .* for target "fleet"/);
    assert.deepEqual(deviceReports(run.output), [
      [1, 'applied'],
      [2, 'applied'],
      [3, 'applied'],
      [4, 'applied'],
      [5, 'applied'],
    ]);
    assert.match(run.output, /Device demo: device-1 applied versions 1\.\.5 and reported each on the ledger/);
    assert.equal(
      readFileSync(join(dir, 'devices', 'device-1', 'applied', 'fleet'), 'utf8'),
      'fleet config v5\n',
    );
    assert.match(run.output, /GET \/chain: \d+ blocks, identical on all 4 validators/);
    assert.match(run.output, /Every process has stopped/);

    // Independently of up's own check: the four databases agree block for block.
    const chains = [0, 1, 2, 3].map((id) => storedChain(dir, id));
    const shortest = Math.min(...chains.map((c) => c.length));
    assert.ok(shortest >= 3, 'genesis and the two added blocks are on every validator');
    for (const chain of chains) assert.deepEqual(chain.slice(0, shortest), chains[0]?.slice(0, shortest));
  });

  it('run again on the same network, expects what the ledger says now and still exits 0', async () => {
    const run = await runUp(dir, undefined);
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /is at version 2 on the ledger/);
    assert.deepEqual(answers(run.output), [
      '200 Failure: Hash is invalid. Please try again.',
      '200 Success: Current hash is valid',
      '200 Success: Current hash is valid',
      '200 Failure: Hash is invalid. Please try again.',
    ]);
    // The device carries on from version 5: it is enrolled already, and the next five versions
    // are published and applied.
    assert.match(run.output, /device-1 is already enrolled for "fleet"/);
    assert.match(run.output, /Target "fleet" is at version 5 on the ledger/);
    assert.deepEqual(
      deviceReports(run.output).map(([version]) => version),
      [6, 7, 8, 9, 10],
    );
    assert.match(run.output, /Device demo: device-1 applied versions 6\.\.10/);
  });
});
