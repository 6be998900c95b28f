/**
 * Staged rollouts as the chain records them: `rollout` transactions (id, group target, version,
 * cumulative wave percentages, failure limit) and `rollout-control` transactions (abort, resume,
 * rollback). The API serves no rollout state yet, so the dashboard reads these transactions from
 * the chain; web/src/waves.ts places each device in its wave the way the ledger does.
 */
import { type BlockRecord, scanChain } from './api.ts';

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
