/**
 * The simulator's checkers. They run after every step, over honest replicas only, and are
 * incremental: a delivery is checked against what was delivered before, in O(1) plus one
 * certificate verification, so checking after every step costs almost nothing.
 *
 *  - agreement: no two honest replicas deliver different blocks at the same height;
 *  - validity: every delivered block passes the application's external check (recomputed here);
 *  - certificate: every delivered block's commit certificate verifies and names that block;
 *  - order: no honest replica delivers a height twice or skips one, and each block extends the
 *    block that replica delivered just before it;
 *  - duplicate-request: no honest replica executes one (client id, request id) at two heights;
 *  - liveness (at the end): every valid request submitted was delivered by every honest replica.
 */
import type { CertificateContext } from '../consensus/certificate.ts';
import { verifyCommitCertificate } from '../consensus/certificate.ts';
import type { CommitCertificate } from '../consensus/types.ts';
import type { BlockHash } from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import { blockDigest, checkSimBlock, type SimBlock, type SimRequest } from './app.ts';

export type ViolationKind =
  | 'agreement'
  | 'validity'
  | 'certificate'
  | 'double-delivery'
  | 'skipped-height'
  | 'chain-link'
  | 'duplicate-request'
  | 'liveness'
  | 'crash';

export interface Violation {
  readonly kind: ViolationKind;
  readonly replica: number;
  readonly height: number;
  readonly timeMs: number;
  readonly detail: string;
}

interface Delivered {
  readonly digest: BlockHash;
  readonly replica: number;
}

export class SafetyChecker {
  /** First honest delivery per height: what every later honest delivery must agree with. */
  private readonly byHeight = new Map<number, Delivered>();
  /** Per replica: the digests it delivered, index = height - 1 (it survives crashes: the ledger is durable). */
  private readonly chains: BlockHash[][];
  /** Per replica: the height at which it executed each request key. */
  private readonly executedAt: Map<string, number>[];
  /** Certificates already verified in this run, by their JSON: replicas often share one. */
  private readonly verifiedCertificates = new Map<string, string | null>();
  private readonly certificatesCachedMax = 10_000;

  constructor(
    private readonly honest: ReadonlySet<number>,
    private readonly genesisHash: BlockHash,
    private readonly certificateContext: CertificateContext,
    n: number,
  ) {
    this.chains = Array.from({ length: n }, () => []);
    this.executedAt = Array.from({ length: n }, () => new Map());
  }

  /** Height of the last block a replica delivered (0 before the first). */
  deliveredHeight(replica: number): number {
    return this.chains[replica]?.length ?? 0;
  }

  /** The digest a replica delivered at a height, if any. */
  deliveredDigest(replica: number, height: number): BlockHash | undefined {
    return this.chains[replica]?.[height - 1];
  }

  /** Highest height delivered by any honest replica. */
  committedHeight(): number {
    let max = 0;
    for (const id of this.honest) max = Math.max(max, this.deliveredHeight(id));
    return max;
  }

  /**
   * Records a delivery and returns every rule it breaks (empty when none). Deliveries of
   * Byzantine replicas are recorded for their own chain but never judged.
   */
  onDeliver(
    replica: number,
    height: number,
    block: SimBlock,
    certificate: CommitCertificate,
    timeMs: number,
  ): Violation[] {
    const chain = this.chains[replica];
    assert(chain !== undefined, `no replica ${replica}`);
    const digest = blockDigest(block);
    const violations: Violation[] = [];
    const flag = (kind: ViolationKind, detail: string): void => {
      violations.push({ kind, replica, height, timeMs, detail });
    };
    const isHonest = this.honest.has(replica);

    if (height <= chain.length) {
      if (isHonest) flag('double-delivery', `height ${height} delivered again (already at ${chain.length})`);
      return violations;
    }
    if (height > chain.length + 1) {
      if (isHonest) flag('skipped-height', `delivered height ${height} after height ${chain.length}`);
    }
    if (!isHonest) {
      if (height === chain.length + 1) chain.push(digest);
      return violations;
    }

    if (block.height !== height)
      flag('validity', `deliver action for height ${height} carries block ${block.height}`);
    const previous = height === 1 ? this.genesisHash : chain[height - 2];
    if (previous !== undefined && block.parent !== previous) {
      flag(
        'chain-link',
        `block ${digest.slice(0, 8)} names parent ${String(block.parent).slice(0, 8)}, the previous block is ${previous.slice(0, 8)}`,
      );
    }
    const invalid = checkSimBlock(block);
    if (invalid !== null)
      flag('validity', `block ${digest.slice(0, 8)} fails the application check: ${invalid}`);
    const certProblem = this.checkCertificate(certificate, height, digest);
    if (certProblem !== null) flag('certificate', certProblem);

    const executed = this.executedAt[replica] as Map<string, number>;
    for (const entry of Array.isArray(block.entries) ? block.entries : []) {
      const key = requestKeyString(entry);
      const at = executed.get(key);
      if (at !== undefined && at !== height) {
        flag(
          'duplicate-request',
          `request ${entry.clientId}/${entry.requestId} executed again (first at height ${at})`,
        );
      } else if (at === undefined) {
        executed.set(key, height);
      }
    }

    const first = this.byHeight.get(height);
    if (first === undefined) this.byHeight.set(height, { digest, replica });
    else if (first.digest !== digest) {
      flag(
        'agreement',
        `block ${digest.slice(0, 8)} but replica ${first.replica} delivered ${first.digest.slice(0, 8)} at this height`,
      );
    }
    if (height === chain.length + 1) chain.push(digest);
    return violations;
  }

  private checkCertificate(certificate: CommitCertificate, height: number, digest: BlockHash): string | null {
    if (certificate.blockHash !== digest) {
      return `certificate is for block ${String(certificate.blockHash).slice(0, 8)}, the delivered block is ${digest.slice(0, 8)}`;
    }
    if (certificate.height !== height) return `certificate is for height ${certificate.height}`;
    const key = JSON.stringify(certificate);
    const cached = this.verifiedCertificates.get(key);
    if (cached !== undefined) return cached;
    const check = verifyCommitCertificate(certificate, {
      ...this.certificateContext,
      expected: { height: certificate.height, blockHash: digest },
    });
    const result = check.ok ? null : `certificate does not verify: ${check.reason}`;
    if (this.verifiedCertificates.size >= this.certificatesCachedMax) this.verifiedCertificates.clear();
    this.verifiedCertificates.set(key, result);
    return result;
  }
}

/**
 * Liveness: every valid request (not refused on arrival) must be in a block delivered by at least
 * `required` honest replicas: f+1 is what a client needs for a trustworthy answer, all honest
 * replicas is the stronger promise that lagging replicas catch up. Returns at most one violation,
 * naming a few of the requests that fell short and how far each honest replica got.
 */
export function checkLiveness(
  honest: ReadonlySet<number>,
  submitted: readonly SimRequest[],
  deliveredKeys: (replica: number) => ReadonlySet<string>,
  required: number,
  timeMs: number,
  deliveredHeight: (replica: number) => number,
): Violation[] {
  assert(
    required >= 1 && required <= honest.size,
    `liveness needs 1..${honest.size} replicas, got ${required}`,
  );
  const replicas = [...honest].sort((a, b) => a - b);
  const short = submitted.filter((r) => {
    const key = requestKeyString(r);
    return replicas.filter((id) => deliveredKeys(id).has(key)).length < required;
  });
  if (short.length === 0) return [];
  const names = short
    .slice(0, 5)
    .map((r) => `${r.clientId}/${r.requestId}`)
    .join(', ');
  const first = short[0] as SimRequest;
  const laggard = replicas.find((id) => !deliveredKeys(id).has(requestKeyString(first))) ?? -1;
  const heights = replicas.map((id) => `${id}:${deliveredHeight(id)}`).join(' ');
  return [
    {
      kind: 'liveness',
      replica: laggard,
      height: laggard >= 0 ? deliveredHeight(laggard) : 0,
      timeMs,
      detail: `${short.length} valid request(s) delivered by fewer than ${required} honest replicas, e.g. ${names}; honest heights ${heights}`,
    },
  ];
}

export function requestKeyString(r: { readonly clientId: string; readonly requestId: string }): string {
  return `${r.clientId}\u0000${r.requestId}`;
}
