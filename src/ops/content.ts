/**
 * Reads a configuration's content back from the validators' copies
 * (GET /v1/targets/:target/versions/:version/content) and accepts it only when it hashes to the
 * sha256 and has the size that the verified chain records for that version. The node the operator
 * named is asked first; when it holds no copy, the other validators of genesis are asked in turn;
 * then a release's inline content on the verified chain is used; and last the config servers of
 * genesis are asked for the artifact by its hash (GET /v1/artifacts/:sha256), since validators keep
 * copies of released content only, not of attested versions. Whoever answers, the bytes must match
 * the verified hash, so asking an untrusted server is safe. A source that answers with other
 * content is a verification failure, never silently skipped.
 */
import { opsContentBytesMax, opsRequestTimeoutMs } from '../constants.ts';
import { sha256Hex } from '../crypto/hash.ts';
import { causeOf } from './chain-reader.ts';
import { OpsError } from './errors.ts';

export interface ExpectedContent {
  readonly target: string;
  readonly version: number;
  readonly sha256: string;
  readonly size: number;
  /** Base64 content carried inline by the release on the verified chain, if any. */
  readonly inline?: string | undefined;
}

export interface VerifiedContent {
  readonly bytes: Buffer;
  /** Where it came from: a validator's URL, "inline in the release transaction", or "config server B (URL)". */
  readonly from: string;
}

export interface ContentSources {
  /** Validators' API base URLs, the one to ask first first. */
  readonly validators: readonly string[];
  /** Config servers by id and URL (from genesis), asked after the validators. */
  readonly configServers: readonly { readonly id: string; readonly url: string }[];
}

export async function fetchVerifiedContent(
  sources: ContentSources,
  expected: ExpectedContent,
  timeoutMs = opsRequestTimeoutMs,
): Promise<VerifiedContent> {
  if (expected.size > opsContentBytesMax) {
    throw new OpsError(
      'TOO_LARGE',
      `${expected.target} v${expected.version} is ${expected.size} bytes; show and diff read at most ${opsContentBytesMax}`,
    );
  }
  const misses: string[] = [];
  const tryFrom = async (label: string, url: string): Promise<VerifiedContent | null> => {
    const got = await fetchBytes(url, expected.size, timeoutMs);
    if (typeof got === 'string') {
      misses.push(`${label}: ${got}`);
      return null;
    }
    const hash = sha256Hex(got);
    if (hash !== expected.sha256 || got.byteLength !== expected.size) {
      throw new OpsError(
        'CONTENT_INVALID',
        `${label} served ${got.byteLength} bytes hashing to ${hash} as ${expected.target} v${expected.version}, ` +
          `but the verified chain records ${expected.size} bytes with sha256 ${expected.sha256}: its copy is wrong or it lies`,
        { url },
      );
    }
    return { bytes: got, from: label };
  };
  const path = `/v1/targets/${encodeURIComponent(expected.target)}/versions/${expected.version}/content`;
  for (const base of sources.validators) {
    const found = await tryFrom(base, `${base.replace(/\/+$/, '')}${path}`);
    if (found !== null) return found;
  }
  if (expected.inline !== undefined) {
    const bytes = Buffer.from(expected.inline, 'base64');
    // The inline content is part of a transaction the ledger checked against this sha256.
    if (sha256Hex(bytes) === expected.sha256) return { bytes, from: 'inline in the release transaction' };
  }
  for (const server of sources.configServers) {
    const label = `config server ${server.id} (${server.url})`;
    const found = await tryFrom(label, `${server.url.replace(/\/+$/, '')}/v1/artifacts/${expected.sha256}`);
    if (found !== null) return found;
  }
  throw new OpsError(
    'CONTENT_UNAVAILABLE',
    `nobody serves ${expected.target} v${expected.version} (sha256 ${expected.sha256}): ${misses.join('; ')}; ` +
      'validators keep copies of released content up to policy.contentCopyBytesMax, config servers keep what was uploaded',
    { target: expected.target, version: expected.version },
  );
}

/** The body, or a string saying why there is none. Reads at most `size` bytes plus one. */
async function fetchBytes(url: string, size: number, timeoutMs: number): Promise<Buffer | string> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    return `unreachable (${causeOf(error)})`;
  }
  if (response.status !== 200) {
    const text = await response.text().catch(() => '');
    let code: unknown;
    try {
      code = (JSON.parse(text) as { code?: unknown }).code;
    } catch {
      code = undefined;
    }
    return `answered ${response.status} ${typeof code === 'string' ? code : text.slice(0, 100)}`;
  }
  if (response.body === null) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of response.body) {
      length += chunk.byteLength;
      // One byte more than expected already proves the content wrong; stop reading there.
      if (length > size + 1 || length > opsContentBytesMax) {
        await response.body.cancel().catch(() => {});
        return Buffer.concat([...chunks, Buffer.from(chunk)]).subarray(0, size + 1);
      }
      chunks.push(Buffer.from(chunk));
    }
  } catch (error) {
    return `the answer broke off (${causeOf(error)})`;
  }
  return Buffer.concat(chunks);
}
