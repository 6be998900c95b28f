/**
 * `configchain node --dir DIR --id N`: runs one validator until SIGINT/SIGTERM.
 * Logs go to DIR/validators/<id>/data/node.log (and to stdout when it is a terminal).
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import pino, { type Logger } from 'pino';
import { validatorsMax } from '../../constants.ts';
import { KeyFileError } from '../../crypto/keyfile.ts';
import { ConfigChainError } from '../../errors.ts';
import { loadNetworkFile, paths } from '../../node/layout.ts';
import { startNode } from '../../node/start.ts';
import { type VerifyOn, verifyOnChoices } from '../../node/verifier.ts';
import { wholeNumberOption } from '../args.ts';

export function createNodeLogger(
  dir: string,
  id: number,
  level = process.env.CONFIGCHAIN_LOG_LEVEL ?? 'info',
): Logger {
  mkdirSync(paths.dataDir(dir, id), { recursive: true });
  const streams: pino.StreamEntry[] = [
    {
      level: level as pino.Level,
      stream: pino.destination({ dest: paths.nodeLog(dir, id), sync: false, mkdir: true }),
    },
  ];
  if (process.stdout.isTTY) streams.push({ level: level as pino.Level, stream: process.stdout });
  return pino({ level, base: { validator: id } }, pino.multistream(streams));
}

export function registerNode(program: Command): void {
  program
    .command('node')
    .description('run one validator: PBFT replica, SQLite ledger, peer links and the HTTP API')
    .requiredOption('--dir <dir>', 'the network directory made by configchain init')
    .requiredOption(
      '--id <n>',
      'this validator id (0-based)',
      wholeNumberOption('--id', 0, validatorsMax - 1),
    )
    .addOption(
      new Option(
        '--verify-on <where>',
        'where signatures are checked: the thread pool (a validator with spare cores) or its event loop (several validators sharing few cores)',
      )
        .choices(verifyOnChoices)
        .default('thread-pool'),
    )
    .action(async (opts: { dir: string; id: number; verifyOn: VerifyOn }) => {
      const dir = resolve(opts.dir);
      try {
        // Checked before the logger creates the data directory of a network that does not exist.
        const network = loadNetworkFile(dir);
        if (network.validators[opts.id] === undefined) {
          throw new ConfigChainError(
            'NODE_START',
            `validator ${opts.id} is not in ${paths.network(dir)} (ids 0..${network.validators.length - 1})`,
          );
        }
      } catch (error) {
        if (!(error instanceof ConfigChainError)) throw error;
        console.error(`configchain node ${opts.id}: ${error.message}`);
        process.exitCode = 1;
        return;
      }
      const log = createNodeLogger(dir, opts.id);
      let running: Awaited<ReturnType<typeof startNode>>;
      try {
        running = await startNode({
          dir,
          id: opts.id,
          logger: log,
          verifyOn: opts.verifyOn,
          onFatal: (error) => {
            console.error(`configchain node ${opts.id}: ${error.message}`);
            void running?.stop().finally(() => process.exit(1));
          },
        });
      } catch (error) {
        // Operating errors (a bad directory, key file, genesis or chain) get their message and
        // exit 1; anything else is a bug and keeps its stack trace.
        if (error instanceof ConfigChainError || error instanceof KeyFileError) {
          log.fatal({ err: error }, 'cannot start');
          console.error(`configchain node ${opts.id}: ${error.message}`);
          process.exitCode = 1;
          return;
        }
        throw error;
      }
      const status = running.node.status();
      console.log(
        `validator ${opts.id} of ${status.chainId}: height ${status.height}, API ${running.node.genesis.validators[opts.id]?.apiUrl}, log ${paths.nodeLog(dir, opts.id)}`,
      );
      const shutdown = (signal: string) => {
        log.info({ signal }, 'shutting down');
        void running.stop().finally(() => {
          log.flush();
          process.exit(0);
        });
      };
      process.once('SIGINT', () => shutdown('SIGINT'));
      process.once('SIGTERM', () => shutdown('SIGTERM'));
    });
}
