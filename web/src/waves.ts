/**
 * Which wave of a staged rollout a device falls into, computed exactly as the ledger does
 * (src/ledger/rollout.ts), on WebCrypto: bucket = the first 6 bytes of
 * SHA-256("configchain/v1/rollout-wave" || 0x00 || canonical JSON of {deviceId, rolloutId})
 * scaled to [0, 100); wave i takes the buckets below waves[i].
 */
import { canonicalString } from '../../src/encoding/canonical.ts';
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
  // The same operations as the ledger, and exact (x * 100 = (x * 25) * 4 with x * 25 < 2^53), so
  // every engine lands on the same bucket.
  return Math.floor((x * 100) / 2 ** 48);
}

/** The wave index of a bucket, or -1 when the waves do not reach it (malformed waves). */
export function waveIndex(bucket: number, waves: readonly number[]): number {
  return waves.findIndex((percent) => bucket < percent);
}
