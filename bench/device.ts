/**
 * `npm run bench -- device [seconds]`: the device verifier on one core. For n = 4 and n = 16
 * validators it verifies a genuine target proof (2f+1 real Ed25519 commit signatures, a sparse
 * Merkle proof in a state of 10,000 targets, rollback and age checks) again and again, each time
 * from freshly parsed JSON as a device would receive it, and prints verifications per second and
 * microseconds per proof. The JSON parse is timed too, since a device pays for it. The CPU time
 * per proof is printed beside the wall time: on a shared, loaded machine it is the steadier figure.
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { makeTargetProof } from '../src/device/testing.ts';
import { verifyTargetProof } from '../src/device/verify.ts';

export async function run(args: string[]): Promise<void> {
  const seconds = Number(args[0] ?? 2);
  console.log(`device verifier: one core, ${seconds} s per case, proofs parsed from JSON each time`);
  // The floor: a proof costs at least 2f+1 of these. Printed so a loaded machine shows as such.
  console.log(`  one raw Ed25519 verify (node:crypto): ${rawVerifyMicros().toFixed(1)} µs of CPU`);
  for (const n of [4, 16]) {
    const fixture = makeTargetProof({ validators: n, otherTargets: 10_000, version: 5 });
    const json = JSON.stringify(fixture.proof);
    const ctx = {
      genesis: fixture.network.genesis,
      target: 'default',
      lastAppliedVersion: 4,
      nowMs: fixture.proof.header.timestampMs + 1000,
      headerAgeMsMax: 60_000,
    };
    // Warm up: JIT and the per-genesis parsed keys, outside the measurement.
    for (let i = 0; i < 200; i++) check(verifyTargetProof(JSON.parse(json), ctx).ok);
    let count = 0;
    const cpuStart = process.cpuUsage();
    const start = process.hrtime.bigint();
    const deadline = start + BigInt(Math.round(seconds * 1e9));
    while (process.hrtime.bigint() < deadline) {
      for (let i = 0; i < 100; i++) check(verifyTargetProof(JSON.parse(json), ctx).ok);
      count += 100;
    }
    const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.cpuUsage(cpuStart);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const quorum = fixture.proof.certificate.signatures.length;
    console.log(
      `  n=${String(n).padEnd(2)} (${quorum} signatures, ${fixture.proof.stateProof.siblings.length} siblings, ${json.length} B): ` +
        `${Math.round(count / elapsed)} verifications/s, ${((elapsed / count) * 1e6).toFixed(1)} µs per proof ` +
        `(CPU time: ${((cpuSeconds / count) * 1e6).toFixed(1)} µs per proof, ${Math.round(count / cpuSeconds)}/s per busy core)`,
    );
  }
}

/** CPU microseconds of one raw node:crypto Ed25519 verification (the floor of a proof's cost). */
function rawVerifyMicros(): number {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const data = Buffer.alloc(160, 7);
  const signature = sign(null, data, privateKey);
  for (let i = 0; i < 500; i++) verify(null, data, publicKey, signature);
  const rounds = 3000;
  const start = process.cpuUsage();
  for (let i = 0; i < rounds; i++) verify(null, data, publicKey, signature);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / rounds;
}

function check(ok: boolean): void {
  if (!ok) throw new Error('the benchmark proof was refused: the fixture or the verifier is broken');
}
