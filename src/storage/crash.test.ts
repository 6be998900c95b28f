/**
 * A writer killed with SIGKILL in the middle of appending leaves a database that opens, verifies,
 * and holds at least every block it acknowledged. The same file runs as the child process when
 * CONFIGCHAIN_CRASH_CHILD names a database path: it appends blocks and consensus records forever
 * and prints each height after appendBlock() returned (its acknowledgement).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SqliteStore } from './sqlite.ts';
import { TestChain } from './testchain.ts';

const childPath = process.env.CONFIGCHAIN_CRASH_CHILD;

if (childPath !== undefined) {
  const chain = new TestChain({ seed: 'crash' });
  const store = SqliteStore.open(childPath, { genesis: chain.genesis });
  // Bounded, so an orphaned child (its parent died first) stops on its own.
  for (let i = 1; i <= 5000; i++) {
    const input = chain.next([chain.release(`target-${i % 7}`), chain.attest(`other-${i % 3}`)]);
    store.appendConsensusRecords([{ seq: i, kind: 'commit', data: { height: i } }]);
    store.appendBlock(input);
    process.stdout.write(`${input.block.header.height}\n`);
  }
  store.close();
} else {
  const dir = mkdtempSync(join(tmpdir(), 'configchain-crash-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('SqliteStore under SIGKILL', () => {
    it('keeps every acknowledged block and still verifies after the writer is killed mid-append', async () => {
      const path = join(dir, 'node.sqlite');
      const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
        env: { ...process.env, CONFIGCHAIN_CRASH_CHILD: path },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let acked = 0;
      let buffered = '';
      const killedAt = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error('the child appended too few blocks in 30 s'));
        }, 30_000);
        child.stdout.on('data', (chunk: Buffer) => {
          buffered += chunk.toString('utf8');
          const lines = buffered.split('\n');
          buffered = lines.pop() ?? '';
          for (const line of lines) acked = Math.max(acked, Number(line));
          if (acked >= 25 && !child.killed) {
            clearTimeout(timer);
            child.kill('SIGKILL');
            resolve(acked);
          }
        });
        child.on('exit', (code, signal) => {
          if (signal !== 'SIGKILL') {
            clearTimeout(timer);
            reject(new Error(`the child exited early (code ${code})`));
          }
        });
      });
      await new Promise((resolve) =>
        child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve),
      );
      const store = SqliteStore.open(path);
      assert.ok(
        store.tip().height >= killedAt,
        `tip ${store.tip().height} holds acknowledged block ${killedAt}`,
      );
      assert.deepEqual(store.verifyChain(), { ok: true, height: store.tip().height });
      const records = store.loadConsensusRecords();
      assert.ok(records.length >= killedAt);
      assert.deepEqual(
        records.map((r) => r.seq),
        records.map((_, i) => i + 1),
      );
      store.close();
    });
  });
}
