/**
 * Staged rollouts as the chain records them: `rollout` transactions (id, group target, version,
 * cumulative wave percentages, failure limit) and `rollout-control` transactions (abort, resume,
 * rollback). The API serves no rollout state yet, so the dashboard reads these transactions from
 * the chain and places each device in its wave the way the ledger does (src/ledger/rollout.ts):
 * bucket = first 6 bytes of SHA-256("configchain/v1/rollout-wave" || 0x00 || canonical JSON of
 * {deviceId, rolloutId}) scaled to [0, 100); wave i takes buckets below waves[i].
 */
import { canonicalString } from '../../src/encoding/canonical.ts';
import { type BlockRecord, scanChain } from './api.ts';
import { sha256 } from './verify.ts';

const encoder = new TextEncoder();
const waveTag = encoder.encode('configchain/v1/rollout-wave\u0000');

export async function waveBucket(deviceId: string, rolloutId: string): Promise<number> {
  const payload = encoder.encode(canonicalString({ deviceId, rolloutId }));
  const data = new Uint8Array(waveTag.length + payload.length);
  data.set(waveTag, 0);
  data.set(payload, waveTag.length);
  const digest = await sha256(data);
  let x = 0;
  for (let i = 0; i < 6; i++) x = x * 256 + (digest[i] ?? 0);
  // The same floating-point operations as the ledger, so every engine lands on the same bucket.
  return Math.floor((x * 100) / 2 ** 48);
}

/** The wave index of a bucket, or -1 when the waves do not reach it (malformed waves). */
export function waveIndex(bucket: number, waves: readonly number[]): number {
  return waves.findIndex((percent) => bucket < percent);
}

export interface RolloutControl {
  readonly action: string;
  readonly height: number;
}

export interface RolloutRecord {
  readonly rolloutId: string;
  readonly target: string;
  readonly version: number;
  readonly waves: readonly number[];
  readonly maxFailuresPercent: number;
  readonly height: number;
  readonly controls: RolloutControl[];
}

type Found =
  | { readonly kind: 'rollout'; readonly record: RolloutRecord }
  | { readonly kind: 'control'; readonly rolloutId: string; readonly control: RolloutControl };

function pick(b: BlockRecord): Found[] {
  const height = b.block.header.height;
  return b.block.txs.flatMap((tx): Found[] => {
    const body = tx.body as Record<string, unknown>;
    if (body.type === 'rollout' && typeof body.rolloutId === 'string' && Array.isArray(body.waves)) {
      return [
        {
          kind: 'rollout',
          record: {
            rolloutId: body.rolloutId,
            target: String(body.target),
            version: Number(body.version),
            waves: body.waves.map(Number),
            maxFailuresPercent: Number(body.maxFailuresPercent),
            height,
            controls: [],
          },
        },
      ];
    }
    if (body.type === 'rollout-control' && typeof body.rolloutId === 'string') {
      return [
        { kind: 'control', rolloutId: body.rolloutId, control: { action: String(body.action), height } },
      ];
    }
    return [];
  });
}

/** Rollouts of the recent chain, newest first, each with its controls in chain order. */
export async function recentRollouts(): Promise<{ rollouts: RolloutRecord[]; truncated: boolean }> {
  const scan = await scanChain(pick);
  const rollouts = new Map<string, RolloutRecord>();
  for (const f of scan.found) if (f.kind === 'rollout') rollouts.set(f.record.rolloutId, f.record);
  // The scan runs newest first: put each rollout's controls back in chain order.
  for (const f of [...scan.found].reverse()) {
    if (f.kind === 'control') rollouts.get(f.rolloutId)?.controls.push(f.control);
  }
  return { rollouts: [...rollouts.values()], truncated: scan.truncated };
}
