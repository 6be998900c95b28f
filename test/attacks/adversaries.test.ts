/**
 * The adversaries themselves, checked before they are used against the system: each proof
 * forgery breaks at least one link of the trust chain (certificate signatures, certificate to
 * header hash, header state root to state proof and entry), while the honest proof passes every
 * link; and the HTTP adversaries lie exactly as described.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { verifyCommitCertificate } from '../../src/consensus/certificate.ts';
import type { TargetProof } from '../../src/device/contract.ts';
import { blockHash, verifyStateProof } from '../../src/ledger/index.ts';
import { targetKey } from '../../src/ledger/types.ts';
import {
  allProofForgeries,
  forgeProof,
  startCompromisedConfigServer,
  startFreezingCache,
  startLyingValidator,
} from './adversaries.ts';
import { certifiedChain, contentOf } from './fixture.ts';

/** Which links of the trust chain a proof passes. */
function links(proof: TargetProof, validators: readonly string[]) {
  return {
    certificate: verifyCommitCertificate(proof.certificate, {
      chainId: proof.header.chainId,
      validators,
    }).ok,
    headerHash: blockHash(proof.header) === proof.certificate.blockHash,
    stateProof: verifyStateProof(
      proof.header.stateRoot,
      targetKey(proof.target),
      proof.entry,
      proof.stateProof,
    ),
  };
}

describe('proof forgeries', () => {
  const chain = certifiedChain([[{ target: 'default', version: 1, content: contentOf('default', 1) }]], {
    startMs: Date.now() - 1000,
    stepMs: 1000,
  });
  const validators = chain.net.genesis.validators.map((v) => v.publicKey);
  const honest = chain.proofs[0]?.get('default');
  assert.ok(honest !== undefined);

  it('the honest proof passes every link', () => {
    assert.deepEqual(links(honest, validators), { certificate: true, headerHash: true, stateProof: true });
  });

  for (const forgery of allProofForgeries) {
    it(`${forgery} breaks at least one link, and leaves the honest proof unchanged`, () => {
      const before = JSON.stringify(honest);
      const forged = forgeProof(honest, forgery);
      assert.equal(JSON.stringify(honest), before);
      assert.notDeepEqual(forged, honest);
      const passed = links(forged, validators);
      assert.ok(Object.values(passed).includes(false), `${forgery} passed ${JSON.stringify(passed)}`);
    });
  }

  it('the consistent forgery passes every link but the signatures', () => {
    const forged = forgeProof(honest, 'consistent-forged-entry');
    assert.deepEqual(links(forged, validators), { certificate: false, headerHash: true, stateProof: true });
    assert.ok(forged.entry !== null && honest.entry !== null);
    assert.equal(forged.entry.version, honest.entry.version + 1);
  });
});

describe('HTTP adversaries', () => {
  // A stand-in upstream: a content route, a proof route that changes every time, and an echo.
  let upstreamUrl: string;
  let proofCount = 0;
  const upstream = createServer((req, res) => {
    const path = req.url ?? '';
    if (path === '/v1/targets/default/versions/1') {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-configchain-version': '1' });
      res.end('1');
    } else if (path === '/v1/targets/default/versions/2' || /^\/v1\/artifacts\//.test(path)) {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-configchain-version': '2' });
      res.end('2');
    } else if (path === '/v1/targets/default/proof') {
      proofCount++;
      const honest = chainProof();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ...honest, header: { ...honest.header, height: proofCount } }));
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path, authorization: req.headers.authorization ?? null }));
    }
  });
  const chain = certifiedChain([[{ target: 'default', version: 1, content: contentOf('default', 1) }]], {
    startMs: Date.now() - 1000,
    stepMs: 1000,
  });
  function chainProof(): TargetProof {
    const proof = chain.proofs[0]?.get('default');
    assert.ok(proof !== undefined);
    return proof;
  }
  before(async () => {
    await new Promise<void>((done) => upstream.listen(0, '127.0.0.1', () => done()));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  after(() => {
    upstream.close();
    upstream.closeAllConnections();
  });

  it('the compromised config server is honest, then substitutes, serves older bytes, and streams endlessly', async () => {
    const a = await startCompromisedConfigServer(upstreamUrl);
    try {
      const get = (path: string) => fetch(`${a.url}${path}`).then(async (r) => [r.status, await r.text()]);
      assert.deepEqual(await get('/v1/targets/default/versions/2'), [200, '2']);
      a.lie = { kind: 'substitute', bytes: Buffer.from('evil') };
      assert.deepEqual(await get('/v1/targets/default/versions/2'), [200, 'evil']);
      assert.deepEqual(await get(`/v1/artifacts/${'a'.repeat(64)}`), [200, 'evil']);
      a.lie = { kind: 'older', target: 'default', version: 1 };
      const older = await fetch(`${a.url}/v1/targets/default/versions/2`);
      assert.equal(await older.text(), '1');
      assert.equal(older.headers.get('x-configchain-version'), '2', 'it still claims the asked version');
      // Non-content routes pass through with the caller's headers.
      const echo = (await (
        await fetch(`${a.url}/v1/targets/default/versions?after=1`, { headers: { authorization: 'x' } })
      ).json()) as { path: string; authorization: string };
      assert.deepEqual(echo, { path: '/v1/targets/default/versions?after=1', authorization: 'x' });

      a.lie = { kind: 'endless', capBytes: 1024 * 1024 };
      const response = await fetch(`${a.url}/v1/targets/default/versions/2`);
      assert.equal(
        (await response.arrayBuffer()).byteLength,
        1024 * 1024,
        'a reader that never stops gets the cap',
      );
      const capped = await a.endless[0];
      assert.deepEqual(capped, { bytesSent: 1024 * 1024, closedByClient: false });

      // Loopback socket buffers take a megabyte or more before backpressure stops the writer, so
      // a reader that gives up early is seen against a much larger cap.
      a.lie = { kind: 'endless', capBytes: 256 * 1024 * 1024 };
      const controller = new AbortController();
      const partial = await fetch(`${a.url}/v1/targets/default/versions/2`, { signal: controller.signal });
      const reader = partial.body?.getReader();
      assert.ok(reader !== undefined);
      await reader.read();
      controller.abort();
      const aborted = await a.endless[1];
      assert.equal(aborted?.closedByClient, true);
      assert.ok((aborted?.bytesSent ?? 0) < 64 * 1024 * 1024);
    } finally {
      await a.close();
    }
  });

  it('the lying validator forges target proofs only, and counts them', async () => {
    const liar = await startLyingValidator(upstreamUrl, 'too-few-signers');
    try {
      const proof = (await (await fetch(`${liar.url}/v1/targets/default/proof`)).json()) as TargetProof;
      assert.equal(proof.certificate.signatures.length, 2);
      assert.equal(liar.forged, 1);
      const echo = (await (await fetch(`${liar.url}/v1/status`)).json()) as { path: string };
      assert.equal(echo.path, '/v1/status');
      liar.forgery = null;
      const passed = (await (await fetch(`${liar.url}/v1/targets/default/proof`)).json()) as TargetProof;
      assert.equal(passed.certificate.signatures.length, 3);
      assert.equal(liar.forged, 1);
    } finally {
      await liar.close();
    }
  });

  it('the freezing cache answers the first proof forever', async () => {
    const cache = await startFreezingCache(upstreamUrl);
    try {
      const height = async () =>
        ((await (await fetch(`${cache.url}/v1/targets/default/proof`)).json()) as TargetProof).header.height;
      const first = await height();
      assert.equal(await height(), first);
      assert.equal(await height(), first);
      assert.equal(cache.servedStale, 2);
      // The upstream itself moved on.
      const fresh = (await (await fetch(`${upstreamUrl}/v1/targets/default/proof`)).json()) as TargetProof;
      assert.ok(fresh.header.height > first);
    } finally {
      await cache.close();
    }
  });
});
