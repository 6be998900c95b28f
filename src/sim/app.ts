/**
 * The simulated application: small plain blocks and requests, ordered by the real PBFT core.
 *
 * A request is {clientId, requestId, payload}. Its payload decides how the application treats it,
 * deterministically, so every honest replica (and the checkers) reach the same verdict:
 *  - "op-..."        a valid operation, recorded as accepted;
 *  - "refuse-..."    well formed but refused by the external check (like a hash that config
 *                    server B does not offer): an honest primary records it with outcome 'refused';
 *  - "malformed-..." fails the stateless checkRequest and never enters an honest block.
 * A block is valid when its digest-relevant fields are well formed, every entry's outcome is the
 * verdict the application computes for it, no entry is malformed, and no request appears twice.
 * Byzantine primaries break these rules on purpose; validity is recomputed by the checkers.
 */
import type { Application, BuildInput, RequestKey } from '../consensus/types.ts';
import { canonicalHash } from '../crypto/hash.ts';
import type { BlockHash, Height, ValidatorId, View } from '../encoding/brand.ts';
import { assert } from '../errors.ts';

export interface SimRequest {
  readonly clientId: string;
  readonly requestId: string;
  readonly payload: string;
}

export type Outcome = 'accepted' | 'refused';

export interface SimEntry extends SimRequest {
  readonly outcome: Outcome;
}

export interface SimBlock {
  readonly height: Height;
  readonly parent: BlockHash;
  readonly view: View;
  readonly proposer: ValidatorId;
  readonly timeMs: number;
  readonly entries: readonly SimEntry[];
}

/** Upper bound on a simulated payload, so a forged request cannot grow without limit. */
export const simPayloadBytesMax = 256;

export function requestVerdict(payload: string): Outcome | 'malformed' {
  if (payload.startsWith('op-')) return 'accepted';
  if (payload.startsWith('refuse-')) return 'refused';
  return 'malformed';
}

export function blockDigest(block: SimBlock): BlockHash {
  return canonicalHash(block) as string as BlockHash;
}

/** Null when the request is acceptable on arrival, else the reason it is refused. */
export function checkSimRequest(request: SimRequest): string | null {
  if (typeof request.clientId !== 'string' || request.clientId.length === 0) return 'missing client id';
  if (typeof request.requestId !== 'string' || request.requestId.length === 0) return 'missing request id';
  if (typeof request.payload !== 'string') return 'payload must be a string';
  if (request.payload.length > simPayloadBytesMax) return `payload longer than ${simPayloadBytesMax} bytes`;
  if (requestVerdict(request.payload) === 'malformed') return `malformed payload ${request.payload}`;
  return null;
}

/**
 * The external validity check an honest replica runs on a proposed block: null when valid, else
 * the reason. It is pure, so the validity checker can recompute it for any delivered block.
 */
export function checkSimBlock(block: SimBlock): string | null {
  if (typeof block !== 'object' || block === null) return 'not a block';
  if (!Number.isSafeInteger(block.height) || block.height < 1) return 'bad height';
  if (!Array.isArray(block.entries)) return 'entries missing';
  const seen = new Set<string>();
  for (const entry of block.entries) {
    const reason = checkSimRequest(entry);
    if (reason !== null) return `entry ${entry.clientId}/${entry.requestId}: ${reason}`;
    const verdict = requestVerdict(entry.payload);
    if (entry.outcome !== verdict)
      return `entry ${entry.clientId}/${entry.requestId} claims ${entry.outcome}, the check says ${verdict}`;
    const key = `${entry.clientId}\u0000${entry.requestId}`;
    if (seen.has(key)) return `request ${entry.clientId}/${entry.requestId} appears twice`;
    seen.add(key);
  }
  return null;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Structural check of a value that claims to be a block (it came from the network). */
export function isSimBlock(value: unknown): value is SimBlock {
  if (typeof value !== 'object' || value === null) return false;
  const b = value as Record<string, unknown>;
  if (!Number.isSafeInteger(b.height) || (b.height as number) < 1) return false;
  if (typeof b.parent !== 'string' || !HEX64.test(b.parent)) return false;
  if (!Number.isSafeInteger(b.view) || (b.view as number) < 0) return false;
  if (!Number.isSafeInteger(b.proposer) || (b.proposer as number) < 0) return false;
  if (typeof b.timeMs !== 'number' || !Number.isFinite(b.timeMs)) return false;
  if (!Array.isArray(b.entries) || b.entries.length > simBlockEntriesMax) return false;
  return b.entries.every((e: unknown) => {
    if (typeof e !== 'object' || e === null) return false;
    const x = e as Record<string, unknown>;
    return (
      typeof x.clientId === 'string' &&
      typeof x.requestId === 'string' &&
      typeof x.payload === 'string' &&
      x.payload.length <= simPayloadBytesMax &&
      (x.outcome === 'accepted' || x.outcome === 'refused')
    );
  });
}

/** Entries a structurally sound simulated block may carry (far above any limits a seed picks). */
export const simBlockEntriesMax = 1000;

/**
 * The Application the core sees. Its block functions are pure, so every replica of a run can
 * share them and the speculative-state duty is trivially met. The one piece of state is the
 * replica's own index of committed requests (its durable ledger), which answers duplicates of
 * requests older than the core's own memory, as the node's transaction index does.
 */
export class SimApplication implements Application<SimBlock, SimRequest> {
  constructor(private readonly committedIndex?: (key: RequestKey) => Height | null) {}

  findCommitted(key: RequestKey): Height | null {
    return this.committedIndex?.(key) ?? null;
  }

  isBlock(value: unknown): boolean {
    return isSimBlock(value);
  }

  digest(block: SimBlock): BlockHash {
    return blockDigest(block);
  }

  parent(block: SimBlock): BlockHash {
    return block.parent;
  }

  height(block: SimBlock): Height {
    return block.height;
  }

  build(input: BuildInput<SimRequest>): SimBlock {
    const entries = input.requests.map((r) => {
      const verdict = requestVerdict(r.payload);
      assert(verdict !== 'malformed', `the core proposed a request that checkRequest refuses: ${r.payload}`);
      return { clientId: r.clientId, requestId: r.requestId, payload: r.payload, outcome: verdict };
    });
    return {
      height: input.height,
      parent: input.parent,
      view: input.view,
      proposer: input.proposer,
      timeMs: input.nowMs,
      entries,
    };
  }

  requestKeys(block: SimBlock): readonly RequestKey[] {
    return block.entries.map((e) => ({ clientId: e.clientId, requestId: e.requestId }));
  }

  requestKey(request: SimRequest): RequestKey {
    return { clientId: request.clientId, requestId: request.requestId };
  }

  requestBytes(request: SimRequest): number {
    return request.clientId.length + request.requestId.length + request.payload.length;
  }

  checkRequest(request: SimRequest): string | null {
    return checkSimRequest(request);
  }

  /** The digest covers the whole block, so a body cannot disagree with its header here. */
  checkBody(block: SimBlock): string | null {
    return Array.isArray(block.entries) ? null : 'entries missing';
  }
}
