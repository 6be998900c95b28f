import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blockHash, genesisBlock } from '../ledger/index.ts';
import { scenarioChain, TestChain } from '../storage/testchain.ts';
import { ChainVerifier, type VerifiedBlock } from './chain-verifier.ts';
import { AuditCollector, fleetOf, HistoryCollector, VersionFinder } from './views.ts';

/** The scenario chain (releases, an attest, enrollments, reports, a revoke), verified block by block. */
function verifiedScenario(): { verifier: ChainVerifier; blocks: VerifiedBlock[] } {
  const chain = new TestChain({ seed: 'ops-views' });
  const verifier = new ChainVerifier(chain.genesis);
  const genesis = genesisBlock(chain.genesis);
  const blocks = [verifier.accept({ hash: blockHash(genesis.header), block: genesis, certificate: null })];
  for (const a of scenarioChain(chain)) {
    blocks.push(
      verifier.accept({ hash: blockHash(a.block.header), block: a.block, certificate: a.certificate }),
    );
  }
  return { verifier, blocks };
}

describe('views of the verified chain', () => {
  const { verifier, blocks } = verifiedScenario();

  it('history lists every release and attest of a target with signers and the devices that applied it', () => {
    const certifiedBy = (height: number) => {
      const signatures = blocks.find((b) => b.height === height)?.certificate?.signatures ?? [];
      assert.ok(signatures.length >= 3, `block ${height} has a commit certificate`);
      return signatures.map((s) => `validator ${s.validator}`);
    };
    const history = new HistoryCollector('default');
    for (const b of blocks) history.onBlock(b);
    const entries = history.result(verifier.state);
    assert.deepEqual(
      entries.map((e) => [
        e.version,
        e.type,
        e.height,
        e.current,
        e.appliedBy.ids,
        e.signers.map((s) => `${s.kind} ${s.id}`),
      ]),
      [
        [1, 'release', 1, false, ['dev-1'], ['admin admin0', 'admin admin1']],
        // An attest is unsigned: the validators of its block's commit certificate vouch for it.
        [2, 'attest', 2, false, [], certifiedBy(2)],
        [3, 'release', 4, true, ['dev-1'], ['admin admin0', 'admin admin1']],
      ],
    );
    assert.equal(entries[0]?.txId, blocks[1]?.txIds[0]);
    assert.equal(entries[2]?.appliedBy.count, 1, 'two reports by one device count it once');
  });

  it('the fleet counts enrolled devices per target and which run its current release', () => {
    const fleet = fleetOf(verifier.state);
    assert.deepEqual([fleet.enrolled, fleet.revoked, fleet.devicesOmitted], [1, 1, 0]);
    assert.deepEqual(
      fleet.targets.map((t) => [t.target, t.version, t.source, t.devices, t.runningCurrent, t.failing]),
      [
        ['cams', 1, 'release', 0, 0, 0],
        ['default', 3, 'release', 1, 1, 0],
      ],
    );
    assert.deepEqual(
      fleet.devices.map((d) => [d.deviceId, d.status, d.runsCurrent, d.lastReport?.version ?? null]),
      [
        ['dev-1', 'enrolled', true, 3],
        ['dev-2', 'revoked', false, null],
      ],
    );
  });

  it('audit lists transactions from a time on, in order, and counts what the limit leaves out', () => {
    const since = blocks[3]?.block.header.timestampMs ?? 0;
    const all = new AuditCollector(since, 100);
    for (const b of blocks) all.onBlock(b);
    assert.deepEqual(
      all.entries.map((e) => [e.height, e.index, e.type, e.subject]),
      [
        [3, 0, 'device-report', 'device dev-1'],
        [4, 0, 'release', 'target default v3'],
        [4, 1, 'device-report', 'device dev-1'],
        [5, 0, 'device-revoke', 'device dev-2'],
        [5, 1, 'device-report', 'device dev-1'],
      ],
    );
    assert.match(all.entries[0]?.detail ?? '', /^report #1: applied target default v1/);
    const limited = new AuditCollector(since, 3);
    for (const b of blocks) limited.onBlock(b);
    assert.deepEqual([limited.entries.length, limited.omitted], [3, 2]);
  });

  it('finds the versions show and diff ask for, and knows the range when one is missing', () => {
    const finder = new VersionFinder('default', [2, 3, 7]);
    for (const b of blocks) finder.onBlock(b);
    assert.deepEqual([...finder.found.keys()].sort(), [2, 3]);
    assert.equal(finder.found.get(2)?.type, 'attest');
    assert.deepEqual([finder.seen, finder.lowest, finder.highest], [3, 1, 3]);
  });
});
