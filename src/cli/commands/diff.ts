/**
 * `configchain diff --target T --from V1 --to V2`: a unified diff (3 lines of context) of two
 * versions' contents, each read from a validator's copy and checked against its sha256 on the
 * chain verified from genesis. Binary content (NUL bytes or invalid UTF-8) gets a clear message
 * with both hashes and sizes instead of a line diff.
 */
import type { Command } from 'commander';
import { versionMax } from '../../constants.ts';
import {
  addOpsOptions,
  type CommandResult,
  type OpsOptions,
  openChain,
  opsAction,
  terminalProgress,
  verifiedTip,
} from '../../ops/command.ts';
import { binaryReason, DiffTooLarge, unifiedDiff } from '../../ops/diff.ts';
import { OpsError } from '../../ops/errors.ts';
import type { DiffOutput } from '../../ops/schemas.ts';
import { readVerifiedVersions, type VerifiedVersion } from '../../ops/versions.ts';
import { wholeNumber } from '../args.ts';
import { defaultNetworkDir } from './up.ts';

interface DiffOptions extends OpsOptions {
  readonly target: string;
  readonly from: string;
  readonly to: string;
}

export function registerDiff(program: Command): void {
  addOpsOptions(
    program
      .command('diff')
      .description('a unified diff of two versions of a target, each checked against the verified chain')
      .requiredOption('--target <name>', 'the configuration target, e.g. default')
      .requiredOption('--from <version>', 'the old version')
      .requiredOption('--to <version>', 'the new version'),
    defaultNetworkDir,
  ).action(opsAction('diff', diff));
}

async function diff(opts: DiffOptions): Promise<CommandResult> {
  const fromVersion = wholeNumber(opts.from, '--from', 1, versionMax);
  const toVersion = wholeNumber(opts.to, '--to', 1, versionMax);
  const chain = await openChain(opts, terminalProgress());
  const [a, b] = await readVerifiedVersions(chain, opts.dir, opts.target, [fromVersion, toVersion]);
  if (a === undefined || b === undefined) throw new OpsError('NOT_FOUND', 'a version is missing');
  const side = (v: VerifiedVersion) => ({
    version: v.version,
    height: v.height,
    sha256: v.sha256,
    size: v.size,
  });
  const name = (v: VerifiedVersion) => `${opts.target}@v${v.version} (sha256 ${v.sha256})`;
  const base = {
    chainId: chain.genesis.chainId,
    node: chain.nodeUrl,
    verified: verifiedTip(chain.reader),
    target: opts.target,
    from: side(a),
    to: side(b),
    identical: a.sha256 === b.sha256,
  };
  const binary = [a, b]
    .map((v) => {
      const why = binaryReason(v.bytes);
      return why === null ? null : `v${v.version} is binary (${why})`;
    })
    .filter((why) => why !== null)
    .join(' and ');
  if (binary !== '') {
    const data: DiffOutput = { ...base, binary, hunks: [], text: '' };
    const verdict = base.identical ? 'they are identical' : 'they differ';
    return {
      data,
      text:
        `No line diff of ${opts.target} v${a.version} and v${b.version}: ${binary}; ${verdict}.\n` +
        `  v${a.version}: sha256 ${a.sha256}, ${a.size} bytes\n  v${b.version}: sha256 ${b.sha256}, ${b.size} bytes\n`,
    };
  }
  let result: ReturnType<typeof unifiedDiff>;
  try {
    result = unifiedDiff(a.bytes.toString('utf8'), b.bytes.toString('utf8'), name(a), name(b));
  } catch (error) {
    if (error instanceof DiffTooLarge) throw new OpsError('TOO_LARGE', error.message);
    throw error;
  }
  const data: DiffOutput = {
    ...base,
    binary: null,
    hunks: result.hunks as DiffOutput['hunks'],
    text: result.text,
  };
  const text =
    result.text === ''
      ? `${opts.target} v${a.version} and v${b.version} have the same content (sha256 ${a.sha256}).\n`
      : result.text;
  return { data, text };
}
