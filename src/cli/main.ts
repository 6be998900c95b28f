/**
 * The `configchain` command: the one entry point. Each subcommand lives in src/cli/commands/
 * and registers itself on the program; this file only assembles them.
 */
import { Command } from 'commander';
import { registerApprove } from './commands/approve.ts';
import { registerAudit } from './commands/audit.ts';
import { registerConfigServer } from './commands/config-server.ts';
import { registerDevice } from './commands/device.ts';
import { registerDevices } from './commands/devices.ts';
import { registerDiff } from './commands/diff.ts';
import { registerExport } from './commands/export.ts';
import { registerHistory } from './commands/history.ts';
import { registerInit } from './commands/init.ts';
import { registerNode } from './commands/node.ts';
import { registerPublish } from './commands/publish.ts';
import { registerRollout } from './commands/rollout.ts';
import { registerShow } from './commands/show.ts';
import { registerSim } from './commands/sim.ts';
import { registerStatus } from './commands/status.ts';
import { registerUp } from './commands/up.ts';
import { registerVerifyChain } from './commands/verify-chain.ts';

export function buildProgram(): Command {
  const program = new Command('configchain')
    .description(
      'ConfigChain: a PBFT-replicated ledger that secures IoT configuration and firmware deployments',
    )
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)');
  registerInit(program);
  registerNode(program);
  registerConfigServer(program);
  registerDevice(program);
  registerUp(program);
  registerSim(program);
  registerPublish(program);
  registerRollout(program);
  registerApprove(program);
  registerDevices(program);
  registerAudit(program);
  registerDiff(program);
  registerExport(program);
  registerHistory(program);
  registerShow(program);
  registerStatus(program);
  registerVerifyChain(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
