/**
 * The liveness promise with real processes and the production timers: a SIGSTOPped peer shows as
 * down within a few seconds and its link comes back after SIGCONT.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { peerIdleTimeoutMs, peerKeepaliveMs } from '../constants.ts';
import type { ValidatorId } from '../encoding/brand.ts';
import { createCa, issueValidatorCert } from './pki.ts';
import { TlsTransport } from './tls-transport.ts';
import { collect, recordStatus, sleep, waitFor } from './transport-compliance.ts';

const peerScript = fileURLToPath(new URL('./testing/peer-process.ts', import.meta.url));

async function echoed(
  transport: TlsTransport,
  received: ReturnType<typeof collect>,
  tag: string,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!received.some((r) => (r.message.echo as { tag?: string } | undefined)?.tag === tag)) {
    assert.ok(Date.now() < deadline, `no echo of ${tag}`);
    transport.send(1 as ValidatorId, { tag });
    await sleep(100);
  }
}

describe('TlsTransport with a real peer process', () => {
  it('shows a SIGSTOPped peer as down within a few seconds and reconnects after SIGCONT', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'configchain-net-'));
    const ca = await createCa('configchain-process-test');
    const certs = [await issueValidatorCert(ca, 0), await issueValidatorCert(ca, 1)];
    let child: ChildProcess | null = null;
    let local: TlsTransport | null = null;
    try {
      for (let attempt = 0; ; attempt++) {
        const base = 20_000 + Math.floor(Math.random() * 19_000);
        const validators = [0, 1].map((id) => ({ id, host: '127.0.0.1', port: base + id }));
        const optionsPath = join(dir, 'peer-1.json');
        writeFileSync(
          optionsPath,
          JSON.stringify({
            self: 1,
            validators,
            tls: { caPem: ca.certPem, certPem: certs[1]!.certPem, keyPem: certs[1]!.keyPem },
          }),
        );
        local = new TlsTransport({
          self: 0 as ValidatorId,
          validators,
          tls: { caPem: ca.certPem, certPem: certs[0]!.certPem, keyPem: certs[0]!.keyPem },
          logger: pino({ level: 'silent' }),
        });
        try {
          await local.start();
        } catch (error) {
          if (attempt < 10) continue;
          throw error;
        }
        child = spawn(process.execPath, ['--import', 'tsx', peerScript, optionsPath], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        break;
      }
      assert.ok(local !== null && child !== null && child.pid !== undefined);
      const received = collect(local);
      const events = recordStatus(local);
      await waitFor('the peer process to connect', () => local!.peerStatus()[0]?.connected === true, 20_000);
      await echoed(local, received, 'before');

      child.kill('SIGSTOP');
      const stoppedAt = Date.now();
      await waitFor('the stopped peer to show as down', () => events.some((e) => !e.connected), 10_000);
      const downAfterMs = Date.now() - stoppedAt;
      const limitMs = peerIdleTimeoutMs + peerKeepaliveMs + 1000;
      assert.ok(downAfterMs <= limitMs, `down after ${downAfterMs} ms; expected within ${limitMs} ms`);

      child.kill('SIGCONT');
      const continuedAt = Date.now();
      await waitFor('the peer to come back', () => local!.peerStatus()[0]?.connected === true, 15_000);
      const upAfterMs = Date.now() - continuedAt;
      await echoed(local, received, 'after');
      assert.ok(upAfterMs < 10_000, `up again after ${upAfterMs} ms`);
      t.diagnostic(`down ${downAfterMs} ms after SIGSTOP; up again ${upAfterMs} ms after SIGCONT`);
    } finally {
      if (child !== null && child.exitCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
      await local?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
