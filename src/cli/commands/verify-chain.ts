/**
 * `configchain verify-chain FILE [--genesis G]`: verifies an export file offline: hash links,
 * commit certificates, transaction and state roots, signatures and ledger rules, and that its
 * genesis is G when given. Names the first bad block height (and line); exit status 0 only when
 * everything checks out, 1 when something does not, 2 when the file cannot be read.
 */
import type { Command } from 'commander';
import { loadTrustedGenesis, processIo, runOps, usageExitsTwo } from '../../ops/command.ts';
import { verifyExportFile } from '../../ops/export-file.ts';
import type { VerifyChainOutput } from '../../ops/schemas.ts';

interface VerifyChainOptions {
  readonly genesis?: string;
  readonly json: boolean;
}

export function registerVerifyChain(program: Command): void {
  usageExitsTwo(program.command('verify-chain'))
    .description('verify a chain export file offline and name the first bad block')
    .argument('<file>', 'a file written by configchain export')
    .option('--genesis <file>', 'the genesis you hold; the file must carry exactly this one')
    .option('--json', 'print machine-readable JSON (see src/ops/schemas.ts)', false)
    .action(async (file: string, opts: VerifyChainOptions) => {
      process.exitCode = await runOps('verify-chain', processIo, opts.json, async () => {
        const pinned =
          opts.genesis === undefined
            ? undefined
            : loadTrustedGenesis({ dir: '.', genesis: opts.genesis }).genesis;
        const result = await verifyExportFile(file, pinned === undefined ? {} : { genesis: pinned });
        if (result.ok) {
          const data: VerifyChainOutput = {
            ok: true,
            file: result.file,
            chainId: result.chainId,
            tipHeight: result.tipHeight,
            transactions: result.transactions,
            failure: null,
          };
          const anchor = pinned === undefined ? 'the genesis in the file' : `the genesis in ${opts.genesis}`;
          return {
            data,
            text:
              `OK: ${result.file} holds chain ${result.chainId}, blocks 0..${result.tipHeight} (${result.transactions} transactions); ` +
              `hash links, commit certificates, transaction and state roots, signatures and ledger rules all check out against ${anchor}.\n`,
          };
        }
        const data: VerifyChainOutput = {
          ok: false,
          file: result.file,
          chainId: null,
          tipHeight: null,
          transactions: null,
          failure: { height: result.height, line: result.line, reason: result.reason },
        };
        const where =
          result.height === null ? `line ${result.line}` : `block ${result.height} (line ${result.line})`;
        processIo.stderr.write(`configchain verify-chain: FAILED at ${where}: ${result.reason}\n`);
        return { data, text: `FAILED at ${where}: ${result.reason}\n`, status: 1 };
      });
    });
}
