/**
 * `configchain show --target T --version V`: the content of one version, read from a validator's
 * copy and printed only when it matches the sha256 and size that the chain, verified from genesis,
 * records for that version. Without --json the raw content goes to stdout (or to --out FILE) and
 * a one-line account of the check to stderr.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { versionMax } from '../../constants.ts';
import {
  addOpsOptions,
  type CommandResult,
  type OpsOptions,
  openChain,
  opsAction,
  processIo,
  terminalProgress,
  verifiedTip,
} from '../../ops/command.ts';
import { binaryReason } from '../../ops/diff.ts';
import { OpsError } from '../../ops/errors.ts';
import type { ShowOutput } from '../../ops/schemas.ts';
import { readVerifiedVersions } from '../../ops/versions.ts';
import { wholeNumber } from '../args.ts';
import { defaultNetworkDir } from './up.ts';

interface ShowOptions extends OpsOptions {
  readonly target: string;
  readonly version: string;
  readonly out?: string;
}

export function registerShow(program: Command): void {
  addOpsOptions(
    program
      .command('show')
      .description(
        "a version's content from a validator's copy, checked against its sha256 on the verified chain",
      )
      .requiredOption('--target <name>', 'the configuration target, e.g. default')
      .requiredOption('--version <n>', 'the version to show')
      .option('--out <file>', 'write the content to this file instead of stdout'),
    defaultNetworkDir,
  ).action(opsAction('show', show));
}

async function show(opts: ShowOptions): Promise<CommandResult> {
  const version = wholeNumber(opts.version, '--version', 1, versionMax);
  const chain = await openChain(opts, terminalProgress());
  const [found] = await readVerifiedVersions(chain, opts.dir, opts.target, [version]);
  if (found === undefined) throw new OpsError('NOT_FOUND', `no version ${version} of ${opts.target}`);
  const tip = verifiedTip(chain.reader);
  const binary = binaryReason(found.bytes);
  const data: ShowOutput = {
    chainId: chain.genesis.chainId,
    node: chain.nodeUrl,
    verified: tip,
    target: opts.target,
    version,
    height: found.height,
    type: found.type,
    sha256: found.sha256,
    size: found.size,
    mediaType: found.mediaType,
    from: found.from,
    encoding: binary === null ? 'utf8' : 'base64',
    content: binary === null ? found.bytes.toString('utf8') : found.bytes.toString('base64'),
  };
  const account =
    `${opts.target} v${version}: ${found.size} bytes, sha256 ${found.sha256} matches its ${found.type} at block ${found.height} ` +
    `of the chain verified to block ${tip.height} (copy read from ${found.from})`;
  if (opts.out !== undefined) {
    try {
      writeFileSync(opts.out, found.bytes);
    } catch (error) {
      throw new OpsError('IO', `cannot write ${opts.out}: ${(error as Error).message}`);
    }
    return { data, text: `${account}; written to ${opts.out}\n` };
  }
  if (!opts.json) processIo.stderr.write(`configchain show: ${account}\n`);
  if (binary !== null && process.stdout.isTTY === true) {
    return { data, text: `(binary content not printed on a terminal: ${binary}; use --out FILE)\n` };
  }
  return { data, text: found.bytes };
}
