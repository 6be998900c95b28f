/**
 * What every operator command shares: finding the genesis the operator holds and a validator to
 * read from, opening a verified chain reader, and turning results and errors into output and an
 * exit status. Output goes to the streams the CLI passes in; nothing here prints on its own.
 *
 * Exit statuses: 0 everything checked out; 1 something did not verify (a block, a content, an
 * export file): what the node or file says is not what the certificates allow; 2 the command
 * could not check (bad arguments, missing files, no validator reachable, not found).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { opsProbeTimeoutMs } from '../constants.ts';
import { ConfigChainError } from '../errors.ts';
import { LedgerError, parseGenesis } from '../ledger/index.ts';
import type { Genesis } from '../ledger/types.ts';
import { apiUrlOf, loadNetworkFile, paths } from '../node/layout.ts';
import { type BlockSource, ChainReader, causeOf, httpBlockSource } from './chain-reader.ts';
import { ChainCheckError } from './chain-verifier.ts';
import { isVerificationFailure, OpsError } from './errors.ts';
import type { ErrorOutput } from './schemas.ts';
import { isoTime } from './views.ts';

export interface OpsOptions {
  /** The network directory (network.json, genesis.json). */
  readonly dir: string;
  /** A genesis file to trust instead of DIR/genesis.json. */
  readonly genesis?: string | undefined;
  /** The validator to read from instead of the first reachable one of DIR/network.json. */
  readonly node?: string | undefined;
  readonly json: boolean;
}

export interface Output {
  write(chunk: string | Uint8Array): unknown;
}

export interface OpsIo {
  readonly stdout: Output;
  readonly stderr: Output;
}

/** Reads and checks the genesis the operator trusts. */
export function loadTrustedGenesis(options: Pick<OpsOptions, 'dir' | 'genesis'>): {
  genesis: Genesis;
  file: string;
} {
  const file = resolve(options.genesis ?? paths.genesis(options.dir));
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new OpsError(
      'GENESIS_MISSING',
      `cannot read the genesis file ${file} (${causeOf(error)}); every check is made against the genesis you hold: pass --genesis FILE or --dir DIR`,
      { file },
    );
  }
  try {
    return { genesis: parseGenesis(json), file };
  } catch (error) {
    if (error instanceof LedgerError) {
      throw new OpsError('GENESIS_MISSING', `${file} is not a valid genesis: ${error.message}`, { file });
    }
    throw error;
  }
}

/**
 * The API URLs of the network's validators: from DIR/network.json when it describes the chain of
 * this genesis, else from genesis itself (a remote network checked with --genesis).
 */
export function validatorUrls(dir: string, genesis: Genesis): string[] {
  if (existsSync(paths.network(dir))) {
    const network = loadNetworkFile(dir);
    if (network.chainId === genesis.chainId) return network.validators.map(apiUrlOf);
  }
  return genesis.validators.map((v) => v.apiUrl);
}

/** --node as given, or the first validator that answers /health. */
export async function pickNode(options: Pick<OpsOptions, 'dir' | 'node'>, genesis: Genesis): Promise<string> {
  if (options.node !== undefined) return normalizeUrl(options.node);
  const urls = validatorUrls(options.dir, genesis);
  const tried: string[] = [];
  for (const url of urls) {
    const ok = await fetch(`${url}/health`, { signal: AbortSignal.timeout(opsProbeTimeoutMs) })
      .then((r) => r.status === 200)
      .catch(() => false);
    if (ok) return url;
    tried.push(url);
  }
  throw new OpsError(
    'NODE_UNREACHABLE',
    `no validator answers (tried ${tried.join(', ')}); start the network (npm start) or pass --node URL`,
    { tried },
  );
}

export function normalizeUrl(text: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `http://${text}`;
  try {
    const url = new URL(withScheme);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
  } catch {
    throw new OpsError(
      'USAGE',
      `--node ${JSON.stringify(text)} is not an http(s) URL such as http://127.0.0.1:5001`,
    );
  }
  return withScheme.replace(/\/+$/, '');
}

export interface OpenChain {
  readonly genesis: Genesis;
  readonly nodeUrl: string;
  readonly reader: ChainReader;
}

/**
 * The genesis, the node, and a reader of its chain. With `progress` (a terminal), long reads show
 * how far verification has come on one line that is cleared when the command prints.
 */
export async function openChain(options: OpsOptions, progress?: Output): Promise<OpenChain> {
  const { genesis } = loadTrustedGenesis(options);
  const nodeUrl = await pickNode(options, genesis);
  const source = httpBlockSource(nodeUrl);
  return {
    genesis,
    nodeUrl,
    reader: new ChainReader(genesis, progress === undefined ? source : withProgress(source, progress)),
  };
}

/** Pages this many blocks apart are worth a progress line; shorter reads stay silent. */
const progressEveryBlocks = 1000;

function withProgress(source: BlockSource, out: Output): BlockSource {
  let shown = false;
  return {
    name: source.name,
    async page(from, limit) {
      const page = await source.page(from, limit);
      const end = from + page.blocks.length - 1;
      if (page.tipHeight >= progressEveryBlocks && end < page.tipHeight) {
        out.write(`\rverifying blocks from genesis: ${end} of ${page.tipHeight}`);
        shown = true;
      } else if (shown) {
        out.write('\r\u001b[2K');
        shown = false;
      }
      return page;
    },
  };
}

/** Where to draw progress: stderr when it is a terminal, else nowhere. */
export function terminalProgress(): Output | undefined {
  return process.stderr.isTTY === true ? process.stderr : undefined;
}

/** Where the verified chain ends, for every command's output. */
export function verifiedTip(reader: ChainReader): { height: number; hash: string; time: string } {
  const header = reader.verifier.tipHeader;
  const hash = reader.verifier.tipHash;
  if (header === null || hash === null) throw new ChainCheckError(0, 'the node served no blocks at all');
  return { height: header.height, hash, time: isoTime(header.timestampMs) };
}

export interface CommandResult {
  /** What --json prints (it matches the command's schema in schemas.ts). */
  readonly data: unknown;
  /** What a person sees without --json. */
  readonly text: string | Uint8Array;
  /** Exit status when the command ran to its end; 0 unless it says otherwise. */
  readonly status?: number;
}

/** Runs a command body and prints its result or its error; returns the exit status. */
export async function runOps(
  name: string,
  io: OpsIo,
  json: boolean,
  body: () => Promise<CommandResult>,
): Promise<number> {
  try {
    const result = await body();
    if (json) io.stdout.write(`${JSON.stringify(result.data, null, 2)}\n`);
    else io.stdout.write(result.text);
    return result.status ?? 0;
  } catch (error) {
    return reportOpsError(name, io, json, error);
  }
}

/** The commander action of a chain-reading command: runOps on the process's streams, setting its exit status. */
export function opsAction<O extends OpsOptions>(
  name: string,
  body: (opts: O) => Promise<CommandResult>,
): (opts: O) => Promise<void> {
  return async (opts) => {
    process.exitCode = await runOps(name, processIo, opts.json, () => body(opts));
  };
}

/**
 * Prints an operating error of a chain-reading command (and with --json its ErrorOutput) and
 * returns the exit status: 1 when something did not verify, 2 when the command could not check.
 * For commands that write their output as they go (rollout show --watch) and so cannot return one
 * CommandResult; anything but a ConfigChainError is a bug and is thrown on.
 */
export function reportOpsError(name: string, io: OpsIo, json: boolean, error: unknown): number {
  if (!(error instanceof ConfigChainError)) throw error;
  const height = error instanceof ChainCheckError ? error.height : null;
  const failed = isVerificationFailure(error.code);
  const headline =
    error instanceof ChainCheckError
      ? `VERIFICATION FAILED: ${error.message}. Do not trust this node's answers; read from another validator (--node) and investigate this one.`
      : failed
        ? `VERIFICATION FAILED: ${error.message}`
        : error.message;
  io.stderr.write(`configchain ${name}: ${headline}\n`);
  if (json) {
    const output: ErrorOutput = { error: { code: error.code, message: error.message, height } };
    io.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
  }
  return failed ? 1 : 2;
}

/**
 * Commander exits 1 on a usage error, which these commands keep for "did not verify"; a usage
 * error exits 2 instead (help and --version still exit 0).
 */
export function usageExitsTwo(command: Command): Command {
  return command.exitOverride((error) => {
    process.exit(error.exitCode === 0 ? 0 : 2);
  });
}

/** The options every chain-reading command takes. */
export function addOpsOptions(command: Command, defaultDir: string): Command {
  return usageExitsTwo(command)
    .option('--dir <dir>', 'the network directory (network.json, genesis.json)', defaultDir)
    .option('--genesis <file>', 'the genesis file to verify against (default: DIR/genesis.json)')
    .option('--node <url>', "the validator to read from (default: the network's first reachable one)")
    .option('--json', 'print machine-readable JSON (see src/ops/schemas.ts)', false);
}

export const processIo: OpsIo = { stdout: process.stdout, stderr: process.stderr };

/** Left-aligned columns, two spaces apart, indented by two. */
export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `  ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')}`.trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
