/**
 * The real `configchain` process refuses malformed numeric options before it does anything: no
 * network is needed, since each command fails while its options are read, and the test checks that
 * nothing was written to the network directory. Each run is a separate process, started together.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const mainTs = join(dirname(fileURLToPath(import.meta.url)), 'main.ts');
const repoRoot = resolve(dirname(mainTs), '..', '..');

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runCli(args: readonly string[]): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', mainTs, ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.once('error', reject);
    child.once('close', (status) => resolveRun({ status, stdout, stderr }));
  });
}

describe('configchain numeric options', () => {
  const dir = mkdtempSync(join(tmpdir(), 'configchain-args-'));
  const file = join(dir, 'app.json');
  writeFileSync(file, '{"mode":"safe"}\n');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses --version 2abc and other malformed numbers with a clear message, a non-zero status and no effect', async () => {
    const [publish, rollout, waves, show, init, sim] = await Promise.all([
      runCli(['publish', '--dir', dir, '--target', 'default', '--file', file, '--version', '2abc']),
      runCli(['rollout', '--dir', dir, '--target', 'group:cameras', '--version', '2abc']),
      runCli(['rollout', '--dir', dir, '--target', 'group:cameras', '--version', '2', '--waves', '10,5x']),
      runCli(['show', '--dir', dir, '--target', 'default', '--version', '2abc', '--json']),
      runCli(['init', '--dir', join(dir, 'net'), '--validators', '4x']),
      runCli(['sim', '--seeds', '1e3', '--no-progress']),
    ]);

    // Commander refuses these while reading the options: the action never starts.
    for (const [run, option] of [
      [publish, '--version <n>'],
      [rollout, '--version <n>'],
      [init, '--validators <n>'],
      [sim, '--seeds <count>'],
    ] as const) {
      assert.notEqual(run.status, 0, run.stderr);
      assert.match(
        run.stderr,
        new RegExp(`option '${option}' argument '[^']+' is invalid\\. Expected a whole decimal number`),
      );
      assert.equal(run.stdout, '');
    }
    assert.match(publish.stderr, /'2abc' is invalid\. Expected a whole decimal number of at least 1\./);
    assert.match(init.stderr, /'4x' is invalid\. Expected a whole decimal number from 4 to 64\./);

    // --waves is read when the rollout is assembled, still before the network directory is opened.
    assert.equal(waves.status, 1, waves.stderr);
    assert.match(waves.stderr, /configchain rollout: --waves must be .* got "10,5x"/);

    // A chain-reading command keeps its contract: a usage error exits 2, with --json as ErrorOutput.
    assert.equal(show.status, 2, show.stderr);
    assert.match(
      show.stderr,
      /configchain show: --version "2abc" is not valid: expected a whole decimal number/,
    );
    const error = (JSON.parse(show.stdout) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, 'USAGE');
    assert.match(error.message, /--version "2abc"/);

    // Nothing was created, uploaded or written: the directory holds only the file we made.
    assert.deepEqual(readdirSync(dir), ['app.json']);
  });
});
