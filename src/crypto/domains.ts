/**
 * Domain-separation tags, one per kind of signed message. The signed bytes are
 * tag || 0x00 || canonical JSON of the payload, so a signature made for one kind
 * never verifies as another, even when the payload bytes happen to be identical.
 */
export const Domain = {
  blockHeader: 'configchain/v1/block-header',
  transaction: 'configchain/v1/transaction',
  releaseApproval: 'configchain/v1/release-approval',
  pbftPrePrepare: 'configchain/v1/pbft/pre-prepare',
  pbftPrepare: 'configchain/v1/pbft/prepare',
  pbftCommit: 'configchain/v1/pbft/commit',
  pbftCheckpoint: 'configchain/v1/pbft/checkpoint',
  pbftViewChange: 'configchain/v1/pbft/view-change',
  pbftNewView: 'configchain/v1/pbft/new-view',
  pbftRequest: 'configchain/v1/pbft/request',
  deviceReport: 'configchain/v1/device-report',
  deviceRequest: 'configchain/v1/device-request',
  uploadToken: 'configchain/v1/upload-token',
} as const;

export type DomainTag = (typeof Domain)[keyof typeof Domain];

const TAGS: ReadonlySet<string> = new Set(Object.values(Domain));

export function isDomainTag(value: string): value is DomainTag {
  return TAGS.has(value);
}
