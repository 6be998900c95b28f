/**
 * `configchain approve --dir DIR --pending FILE --admin ID`: one more admin signs a release that
 * `configchain publish` left in a pending file (it had fewer approvals than the genesis threshold).
 * With enough approvals the release is submitted and the command waits for its commit, then
 * removes the pending file; otherwise the file is rewritten with the new signature and the command
 * says who must approve next.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { Height, TxId } from '../../encoding/brand.ts';
import { addApproval, LedgerError, parseTransaction, type Transaction } from '../../ledger/index.ts';
import {
  approveCommand,
  artifactCheckWaitMs,
  loadAdminKey,
  loadNetworkGenesis,
  OperatorError,
  type Print,
  runWrite,
  submitAndWait,
  Validators,
  writePending,
} from './publish.ts';

export interface ApproveOptions {
  readonly dir: string;
  readonly pending: string;
  readonly admin: string;
  readonly node?: string;
  readonly print: Print;
}

export type ApproveResult =
  | {
      readonly status: 'committed';
      readonly target: string;
      readonly version: number;
      readonly approvals: readonly string[];
      readonly txId: TxId;
      readonly height: Height;
    }
  | {
      readonly status: 'pending';
      readonly target: string;
      readonly version: number;
      readonly approvals: readonly string[];
      readonly threshold: number;
      readonly pendingFile: string;
      readonly next: string;
    };

export async function approve(options: ApproveOptions): Promise<ApproveResult> {
  const dir = resolve(options.dir);
  const pendingFile = resolve(options.pending);
  const { print } = options;
  const genesis = loadNetworkGenesis(dir);
  const tx = readPending(pendingFile);
  const body = tx.body;
  if (body.type !== 'release') {
    throw new OperatorError(
      'PENDING_INVALID',
      `${pendingFile} holds a ${body.type} transaction; only releases collect approvals`,
    );
  }
  if (body.chainId !== genesis.chainId) {
    throw new OperatorError(
      'PENDING_WRONG_NETWORK',
      `${pendingFile} is a release for chain ${body.chainId}, but ${dir} is chain ${genesis.chainId}; pass the --dir of the network it was made for`,
    );
  }
  if (tx.signatures.some((s) => s.signer === options.admin)) {
    throw new OperatorError(
      'ALREADY_APPROVED',
      `admin ${options.admin} has already approved this release (approvals: ${signers(tx).join(', ')}); another admin must approve it`,
    );
  }
  const key = loadAdminKey(dir, genesis, options.admin);
  const approved = addApproval(tx, key);
  const approvals = signers(approved);
  const known = approvals.filter((id) => genesis.admins.some((a) => a.id === id));
  print(
    `${options.admin} approved ${body.target} version ${body.version} (sha256 ${body.sha256}): ${known.length} of the ${genesis.releaseThreshold} approvals needed (${approvals.join(', ')})`,
  );

  if (known.length < genesis.releaseThreshold) {
    writePending(pendingFile, approved);
    const missing = genesis.admins.map((a) => a.id).filter((id) => !approvals.includes(id));
    const next = approveCommand(dir, pendingFile, missing[0] ?? 'ADMIN', options.node);
    print(
      `  still waiting for approvals in ${pendingFile}; next, another admin (${missing.join(' or ')}) runs:`,
    );
    print(`    ${next}`);
    return {
      status: 'pending',
      target: body.target,
      version: body.version,
      approvals,
      threshold: genesis.releaseThreshold,
      pendingFile,
      next,
    };
  }

  // The signature is kept in the file before the submit, so a failed submit loses no approval.
  writePending(pendingFile, approved);
  const validators = new Validators(genesis, options.node);
  const committed = await submitAndWait(
    validators,
    approved,
    `release of ${body.target} version ${body.version}`,
    artifactCheckWaitMs(body.size),
  );
  rmSync(pendingFile, { force: true });
  print(`  committed in block ${committed.height}, tx ${committed.txId}; removed ${pendingFile}`);
  return {
    status: 'committed',
    target: body.target,
    version: body.version,
    approvals,
    txId: committed.txId,
    height: committed.height,
  };
}

function signers(tx: Transaction): string[] {
  return tx.signatures.map((s) => s.signer);
}

function readPending(file: string): Transaction {
  if (!existsSync(file)) {
    throw new OperatorError(
      'PENDING_MISSING',
      `there is no pending release ${file}; configchain publish prints the path it wrote (default DIR/pending/<target>-<version>.json)`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new OperatorError(
      'PENDING_INVALID',
      `${file} is not JSON (${(err as Error).message}); publish again`,
    );
  }
  const pending = json as { kind?: unknown; tx?: unknown } | null;
  if (pending === null || typeof pending !== 'object' || pending.kind !== 'configchain-pending-release') {
    throw new OperatorError(
      'PENDING_INVALID',
      `${file} is not a pending release written by configchain publish (no "kind": "configchain-pending-release")`,
    );
  }
  try {
    return parseTransaction(pending.tx);
  } catch (err) {
    if (err instanceof LedgerError) {
      throw new OperatorError(
        'PENDING_INVALID',
        `${file} holds no valid transaction: ${err.message}; publish again`,
      );
    }
    throw err;
  }
}

export function registerApprove(program: Command): void {
  program
    .command('approve')
    .description("add an admin's approval to a pending release; submits it once the threshold is reached")
    .requiredOption('--dir <dir>', 'the network directory (its genesis.json and admins/)')
    .requiredOption('--pending <file>', 'the pending release file that configchain publish wrote')
    .requiredOption('--admin <id>', 'the admin who approves (its key is DIR/admins/<id>.key)')
    .option('--node <url>', 'a validator API URL; default: every validator of genesis, in turn')
    .option('--json', 'print the result as JSON only', false)
    .action((opts: { dir: string; pending: string; admin: string; node?: string; json: boolean }) =>
      runWrite('approve', opts.json, (print) =>
        approve({
          dir: opts.dir,
          pending: opts.pending,
          admin: opts.admin,
          ...(opts.node !== undefined ? { node: opts.node } : {}),
          print,
        }),
      ),
    );
}
