/**
 * `configchain config-server --dir DIR --id A|B`: runs one config server of a network directory
 * (its port comes from network.json, its upload admins and size limit from genesis.json) until
 * SIGINT/SIGTERM. Logs go to DIR/config-servers/<id>/server.log.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import pino from 'pino';
import { buildConfigServer } from '../../configserver/server.ts';
import { ArtifactStore } from '../../configserver/store.ts';
import { portMax } from '../../constants.ts';
import { ConfigChainError } from '../../errors.ts';
import { loadGenesisFile, loadNetworkFile, paths } from '../../node/layout.ts';
import { wholeNumberOption } from '../args.ts';

export interface ConfigServerRunOptions {
  readonly dir: string;
  readonly id: 'A' | 'B';
  /** Overrides the host and port of network.json. */
  readonly host?: string;
  readonly port?: number;
}

export interface RunningConfigServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function runConfigServer(options: ConfigServerRunOptions): Promise<RunningConfigServer> {
  const dir = resolve(options.dir);
  const network = loadNetworkFile(dir);
  const entry = network.configServers.find((s) => s.id === options.id);
  if (entry === undefined) {
    throw new ConfigChainError(
      'CONFIG_SERVER_UNKNOWN',
      `network.json in ${dir} has no config server "${options.id}"; use one of ${network.configServers.map((s) => s.id).join(', ')}`,
    );
  }
  const genesis = loadGenesisFile(dir);
  const serverDir = paths.configServerDir(dir, options.id);
  const logger = pino(
    { name: `config-server-${options.id}`, level: 'info' },
    pino.destination({ dest: join(serverDir, 'server.log'), mkdir: true, sync: false }),
  );
  const store = ArtifactStore.open(paths.artifactsDir(dir, options.id), {
    artifactBytesMax: genesis.policy.artifactBytesMax,
  });
  const app = await buildConfigServer({ store, admins: genesis.admins, logger });
  const host = options.host ?? entry.host;
  const port = options.port ?? entry.port;
  try {
    await app.listen({ host, port });
  } catch (err) {
    store.close();
    throw new ConfigChainError(
      'LISTEN_FAILED',
      `config server ${options.id} cannot listen on ${host}:${port} (${(err as Error).message}); stop whatever uses the port or pick another base port`,
    );
  }
  logger.info({ host, port, dir }, 'config server listening');
  return {
    url: `http://${host}:${port}`,
    close: async () => {
      await app.close();
      store.close();
      logger.flush();
    },
  };
}

export function registerConfigServer(program: Command): void {
  program
    .command('config-server')
    .description('run a config server (artifacts by hash and by target/version) of a network directory')
    .requiredOption('--dir <dir>', 'the network directory made by configchain init')
    .requiredOption('--id <id>', 'which config server: A (device-facing) or B (validator-facing)')
    .option('--host <host>', 'listen address (default: from network.json)')
    .option(
      '--port <port>',
      'listen port (default: from network.json)',
      wholeNumberOption('--port', 1, portMax),
    )
    .action(async (opts: { dir: string; id: string; host?: string; port?: number }) => {
      if (opts.id !== 'A' && opts.id !== 'B') {
        console.error(`--id must be A or B, got "${opts.id}"`);
        process.exit(2);
      }
      let server: RunningConfigServer;
      try {
        server = await runConfigServer({
          dir: opts.dir,
          id: opts.id,
          ...(opts.host !== undefined ? { host: opts.host } : {}),
          ...(opts.port !== undefined ? { port: opts.port } : {}),
        });
      } catch (err) {
        console.error(`config-server: ${(err as Error).message}`);
        process.exitCode = 1;
        return;
      }
      console.log(`config server ${opts.id} listening on ${server.url}`);
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
}
