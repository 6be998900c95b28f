/**
 * `configchain history --target T`: every release and attest of T, oldest first, with height,
 * time, version, hash and signers, and which devices reported applying (or failing to apply) each
 * one; all of it read from the chain verified from genesis, so a node that alters a block makes
 * the command fail and name the block instead of printing it.
 */
import type { Command } from 'commander';
import {
  addOpsOptions,
  type CommandResult,
  type OpsOptions,
  openChain,
  opsAction,
  terminalProgress,
  verifiedTip,
} from '../../ops/command.ts';
import type { HistoryOutput } from '../../ops/schemas.ts';
import { type DeviceList, HistoryCollector, signerText } from '../../ops/views.ts';
import { defaultNetworkDir } from './up.ts';

interface HistoryOptions extends OpsOptions {
  readonly target: string;
}

export function registerHistory(program: Command): void {
  addOpsOptions(
    program
      .command('history')
      .description(
        'every release and attest of a target, with signers and the devices that applied it, verified',
      )
      .requiredOption('--target <name>', 'the configuration target, e.g. default'),
    defaultNetworkDir,
  ).action(opsAction('history', history));
}

async function history(opts: HistoryOptions): Promise<CommandResult> {
  const { genesis, nodeUrl, reader } = await openChain(opts, terminalProgress());
  const collector = new HistoryCollector(opts.target);
  await reader.sync((block) => collector.onBlock(block));
  const data: HistoryOutput = {
    chainId: genesis.chainId,
    node: nodeUrl,
    verified: verifiedTip(reader),
    target: opts.target,
    entries: collector.result(reader.verifier.state) as HistoryOutput['entries'],
  };
  return { data, text: render(data) };
}

function devicesText(list: DeviceList): string {
  const more = list.count > list.ids.length ? ` and ${list.count - list.ids.length} more` : '';
  return `${list.ids.join(', ')}${more} (${list.count} device${list.count === 1 ? '' : 's'})`;
}

function render(d: HistoryOutput): string {
  const out = [
    `Target ${d.target} on chain ${d.chainId}, verified from genesis to block ${d.verified.height} (${d.verified.time}), read from ${d.node}`,
  ];
  if (d.entries.length === 0) {
    out.push(`No release or attest of ${d.target} is on the chain.`);
    return `${out.join('\n')}\n`;
  }
  for (const e of d.entries) {
    out.push(
      '',
      `v${e.version}  ${e.type}  block ${e.height}  ${e.time}${e.current ? '  (current)' : ''}`,
      `    sha256 ${e.sha256}, ${e.size} bytes${e.mediaType === null ? '' : `, ${e.mediaType}`}`,
      `    signed by ${signerText(e.signers)}  (tx ${e.txId})`,
      e.appliedBy.count === 0
        ? '    applied by: no device has reported it'
        : `    applied by: ${devicesText(e.appliedBy)}`,
    );
    if (e.failedBy.count > 0) out.push(`    FAILED on: ${devicesText(e.failedBy)}`);
  }
  return `${out.join('\n')}\n`;
}
