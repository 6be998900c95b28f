/**
 * Reads given versions of a target for show and diff: finds each version's release or attest on
 * the chain verified from genesis, then reads its content from a validator's copy and accepts it
 * only if it matches the sha256 and size recorded there (src/ops/content.ts).
 */
import { type OpenChain, validatorUrls, verifiedTip } from './command.ts';
import { fetchVerifiedContent } from './content.ts';
import { OpsError } from './errors.ts';
import { VersionFinder } from './views.ts';

export interface VerifiedVersion {
  readonly version: number;
  readonly height: number;
  readonly type: 'release' | 'attest';
  readonly sha256: string;
  readonly size: number;
  readonly mediaType: string | null;
  readonly bytes: Buffer;
  /** Whose copy was read: a validator's URL, "inline in the release transaction", or a config server. */
  readonly from: string;
}

export async function readVerifiedVersions(
  chain: OpenChain,
  dir: string,
  target: string,
  versions: readonly number[],
): Promise<VerifiedVersion[]> {
  const finder = new VersionFinder(target, versions);
  await chain.reader.sync((block) => finder.onBlock(block));
  const tip = verifiedTip(chain.reader);
  const others = validatorUrls(dir, chain.genesis).filter((u) => u !== chain.nodeUrl);
  const out: VerifiedVersion[] = [];
  for (const version of versions) {
    const found = finder.found.get(version);
    if (found === undefined) {
      throw new OpsError(
        'NOT_FOUND',
        `target ${target} has no version ${version} on the chain verified to block ${tip.height}` +
          ` (${finder.seen === 0 ? 'it has no version at all' : `its versions run from ${finder.lowest} to ${finder.highest}`}); see configchain history --target ${target}`,
        { target, version },
      );
    }
    const sources = { validators: [chain.nodeUrl, ...others], configServers: chain.genesis.configSources };
    const content = await fetchVerifiedContent(sources, {
      target,
      version,
      sha256: found.sha256,
      size: found.size,
      inline: found.inline,
    });
    out.push({ version, ...found, bytes: content.bytes, from: content.from });
  }
  return out;
}
