/**
 * `configchain audit --since DATE`: every transaction in blocks from DATE on, in chain order, with
 * its time, height, type, subject and signers, read from the chain verified from genesis.
 */
import type { Command } from 'commander';
import { opsAuditEntriesMax } from '../../constants.ts';
import {
  addOpsOptions,
  type CommandResult,
  type OpsOptions,
  openChain,
  opsAction,
  terminalProgress,
  verifiedTip,
} from '../../ops/command.ts';
import { OpsError } from '../../ops/errors.ts';
import type { AuditOutput } from '../../ops/schemas.ts';
import { AuditCollector, isoTime, signerText } from '../../ops/views.ts';
import { wholeNumber } from '../args.ts';
import { defaultNetworkDir } from './up.ts';

interface AuditOptions extends OpsOptions {
  readonly since: string;
  readonly limit: string;
  readonly heartbeats: boolean;
}

export function registerAudit(program: Command): void {
  addOpsOptions(
    program
      .command('audit')
      .description('every transaction since a date, in order, with who signed it, from the verified chain')
      .requiredOption('--since <date>', 'ISO 8601 date or time, e.g. 2026-11-24 or 2026-11-24T17:00:00Z')
      .option('--heartbeats', "also list validators' heartbeat transactions (otherwise only counted)", false)
      .option(
        '--limit <n>',
        `list at most this many transactions (at most ${opsAuditEntriesMax})`,
        String(opsAuditEntriesMax),
      ),
    defaultNetworkDir,
  ).action(opsAction('audit', audit));
}

/** Parses --since; a bare date means its midnight UTC (Date.parse's rule for date-only ISO forms). */
export function parseSince(text: string): number {
  const ms = /^\d{4}-\d{2}-\d{2}([T ].*)?$/.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(ms)) {
    throw new OpsError(
      'USAGE',
      `--since ${JSON.stringify(text)} is not an ISO 8601 date or time; use e.g. 2026-11-24 or 2026-11-24T17:00:00Z`,
    );
  }
  return ms;
}

async function audit(opts: AuditOptions): Promise<CommandResult> {
  const sinceMs = parseSince(opts.since);
  const limit = wholeNumber(opts.limit, '--limit', 1, opsAuditEntriesMax);
  const { genesis, nodeUrl, reader } = await openChain(opts, terminalProgress());
  const collector = new AuditCollector(sinceMs, limit, opts.heartbeats);
  await reader.sync((block) => collector.onBlock(block));
  const data: AuditOutput = {
    chainId: genesis.chainId,
    node: nodeUrl,
    verified: verifiedTip(reader),
    since: isoTime(sinceMs),
    entries: collector.entries as AuditOutput['entries'],
    omitted: collector.omitted,
    heartbeatsSkipped: collector.heartbeatsSkipped,
  };
  return { data, text: render(data) };
}

function render(d: AuditOutput): string {
  const out = [
    `Transactions since ${d.since} on chain ${d.chainId}, verified from genesis to block ${d.verified.height} (${d.verified.time}), read from ${d.node}`,
  ];
  if (d.entries.length === 0) out.push('None.');
  for (const e of d.entries) {
    out.push(
      `${e.time}  block ${e.height} #${e.index}  ${e.type}  ${e.subject}  signed by ${signerText(e.signers)}`,
      `    ${e.detail}  (tx ${e.txId})`,
    );
  }
  if (d.omitted > 0) out.push(`... and ${d.omitted} more (raise --limit)`);
  if (d.heartbeatsSkipped > 0) {
    out.push(
      `(${d.heartbeatsSkipped} validator heartbeat${d.heartbeatsSkipped === 1 ? '' : 's'} not listed; --heartbeats lists them)`,
    );
  }
  return `${out.join('\n')}\n`;
}
