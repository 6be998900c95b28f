/**
 * The `configchain` command: the one entry point. Each subcommand lives in src/cli/commands/
 * and registers itself on the program; this file only assembles them.
 */
import { Command } from 'commander';
import { registerApprove } from './commands/approve.ts';
import { registerConfigServer } from './commands/config-server.ts';
import { registerDevices } from './commands/devices.ts';
import { registerDevice } from './commands/device.ts';
import { registerInit } from './commands/init.ts';
import { registerNode } from './commands/node.ts';
import { registerPublish } from './commands/publish.ts';
import { registerSim } from './commands/sim.ts';
import { registerUp } from './commands/up.ts';

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
  registerApprove(program);
  registerDevices(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
