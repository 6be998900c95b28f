/**
 * `configchain export --out FILE`: the whole chain (genesis, every block with its commit
 * certificate) in one JSON-lines file (format in src/ops/export-file.ts). Every block is verified
 * against the genesis the operator holds before it is written, and the file appears atomically.
 */
import type { Command } from 'commander';
import {
  addOpsOptions,
  type CommandResult,
  type OpsOptions,
  openChain,
  opsAction,
  terminalProgress,
} from '../../ops/command.ts';
import { exportChain } from '../../ops/export-file.ts';
import type { ExportOutput } from '../../ops/schemas.ts';
import { defaultNetworkDir } from './up.ts';

interface ExportOptions extends OpsOptions {
  readonly out: string;
}

export function registerExport(program: Command): void {
  addOpsOptions(
    program
      .command('export')
      .description(
        'write the whole verified chain (genesis, blocks, certificates) to one file for offline checks',
      )
      .requiredOption('--out <file>', 'the file to write (written as FILE.tmp, then renamed)'),
    defaultNetworkDir,
  ).action(opsAction('export', exportCommand));
}

async function exportCommand(opts: ExportOptions): Promise<CommandResult> {
  const { nodeUrl, reader } = await openChain(opts, terminalProgress());
  const summary = await exportChain(reader, opts.out);
  const data: ExportOutput = { ...summary, node: nodeUrl };
  return {
    data,
    text:
      `Exported blocks 0..${summary.tipHeight} of chain ${summary.chainId} (${summary.transactions} transactions, ` +
      `${summary.bytes} bytes) from ${nodeUrl} to ${summary.file}; every block verified against the genesis you hold.\n`,
  };
}
