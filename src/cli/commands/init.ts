/**
 * `configchain init`: creates a network directory (the layout is in src/node/layout.ts and
 * docs/operations.md): genesis, the network CA and one TLS certificate per validator, Ed25519
 * validator, admin and device keys, config-server folders (seeded with the article's demo data
 * when --demo) and network.json. `configchain up` and the tests call initNetwork() directly.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { seedArtifact } from '../../configserver/store.ts';
import {
  artifactBytesMax,
  inlineContentBytesMax,
  portMax,
  validateHashTimeoutMs,
  validatorsMax,
} from '../../constants.ts';
import { generateKeyPair } from '../../crypto/ed25519.ts';
import { savePrivateKey } from '../../crypto/keyfile.ts';
import type { PublicKeyHex, ValidatorId } from '../../encoding/brand.ts';
import { ConfigChainError } from '../../errors.ts';
import type { Genesis } from '../../ledger/types.ts';
import { createCa, issueValidatorCert, writeCertAndKey } from '../../net/pki.ts';
import { defaultBasePort, defaultPorts, type NetworkFile, paths } from '../../node/layout.ts';
import { wholeNumberOption } from '../args.ts';

export interface InitOptions {
  readonly dir: string;
  /** n = 3f+1 >= 4; default 4. */
  readonly validators?: number;
  /** Shifts every port: validator i API P+1+i, peer P+1001+i, config server A P+101, B P+102. */
  readonly basePort?: number;
  /** Seeds the article's example data (target "default", versions 1..5) and allows its compat API. */
  readonly demo?: boolean;
  /** Replaces an existing network in dir. */
  readonly force?: boolean;
  /** Genesis time; defaults to now. Tests pass a fixed value. */
  readonly genesisTimeMs?: number;
  readonly heartbeatIntervalMs?: number;
}

export interface InitResult {
  readonly dir: string;
  readonly network: NetworkFile;
  readonly genesis: Genesis;
}

const HOST = '127.0.0.1';
const ADMIN_IDS = ['admin-1', 'admin-2', 'admin-3'] as const;
const RELEASE_THRESHOLD = 2;
const DEVICE_IDS = ['device-1'] as const;
export const demoTarget = 'default';
export const demoVersions = 5;
/**
 * The target the demo device follows: one of its own, so the device part of `configchain up`
 * (releases published one after another) never collides with the article's "default" flow.
 */
export const deviceDemoTarget = 'fleet';

/** The top-level entries a network consists of: the only things --force removes. */
const NETWORK_ENTRIES = [
  'network.json',
  'genesis.json',
  'ca',
  'validators',
  'admins',
  'config-servers',
  'devices',
];

export async function initNetwork(options: InitOptions): Promise<InitResult> {
  const dir = resolve(options.dir);
  const n = options.validators ?? 4;
  const basePort = options.basePort ?? defaultBasePort;
  const demo = options.demo ?? false;
  checkOptions(n, basePort);

  if (existsSync(paths.network(dir)) || existsSync(paths.genesis(dir))) {
    if (options.force !== true) {
      throw new ConfigChainError(
        'NETWORK_EXISTS',
        `${dir} already holds a network (network.json/genesis.json); refusing to overwrite it. ` +
          'Use another --dir, or pass --force to delete it (keys and chain data included) and create a new one.',
        { dir },
      );
    }
    for (const entry of NETWORK_ENTRIES) rmSync(resolve(dir, entry), { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });

  const ports = defaultPorts(basePort, n);
  const chainId = `configchain-${demo ? 'demo' : 'net'}-${randomBytes(6).toString('hex')}`;

  // Keys first: genesis needs every public key.
  const validatorKeys: PublicKeyHex[] = [];
  for (let i = 0; i < n; i++) {
    const pair = generateKeyPair();
    savePrivateKey(paths.validatorKey(dir, i), pair.privateKey);
    mkdirSync(paths.dataDir(dir, i), { recursive: true });
    validatorKeys.push(pair.publicKeyHex);
  }
  const admins = ADMIN_IDS.map((id) => {
    const pair = generateKeyPair();
    savePrivateKey(paths.adminKey(dir, id), pair.privateKey);
    return { id, publicKey: pair.publicKeyHex };
  });

  const ca = await createCa(`ConfigChain CA ${chainId}`);
  writeCertAndKey(paths.caCert(dir), paths.caKey(dir), ca);
  for (let i = 0; i < n; i++) {
    writeCertAndKey(paths.tlsCert(dir, i), paths.tlsKey(dir, i), await issueValidatorCert(ca, i));
  }

  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 5000;
  const urlA = `http://${HOST}:${ports.configServerA}`;
  const urlB = `http://${HOST}:${ports.configServerB}`;
  const genesis: Genesis = {
    chainId,
    genesisTimeMs: options.genesisTimeMs ?? Date.now(),
    validators: validatorKeys.map((publicKey, i) => ({
      id: i as ValidatorId,
      publicKey,
      peerAddress: `${HOST}:${ports.peer[i]}`,
      apiUrl: `http://${HOST}:${ports.api[i]}`,
    })),
    admins,
    releaseThreshold: RELEASE_THRESHOLD,
    configSources: [
      { id: 'A', url: urlA, role: 'device-facing' },
      { id: 'B', url: urlB, role: 'validator-facing' },
    ],
    policy: {
      heartbeatIntervalMs,
      // Devices must accept a header from an idle chain: at least a few heartbeats old.
      headerAgeMsMax: Math.max(5 * 60_000, 3 * heartbeatIntervalMs),
      inlineContentBytesMax,
      contentCopyBytesMax: 1024 * 1024,
      artifactBytesMax,
      allowUnauthenticatedCompat: demo,
      clockSkewMsMax: 2 * validateHashTimeoutMs,
    },
  };
  writeJson(paths.genesis(dir), genesis);

  for (const id of ['A', 'B'] as const) mkdirSync(paths.artifactsDir(dir, id), { recursive: true });
  if (demo) await seedDemoArtifacts(dir);

  for (const deviceId of DEVICE_IDS) {
    const pair = generateKeyPair();
    savePrivateKey(paths.deviceKey(dir, deviceId), pair.privateKey);
    writeJson(paths.deviceFile(dir, deviceId), {
      deviceId,
      publicKey: pair.publicKeyHex,
      target: deviceDemoTarget,
      configServer: urlA,
      validators: genesis.validators.map((v) => v.apiUrl),
    });
  }

  const network: NetworkFile = {
    chainId,
    demo,
    validators: genesis.validators.map((_v, i) => ({
      id: i,
      host: HOST,
      apiPort: ports.api[i] as number,
      peerPort: ports.peer[i] as number,
    })),
    configServers: [
      { id: 'A', host: HOST, port: ports.configServerA, role: 'device-facing' },
      { id: 'B', host: HOST, port: ports.configServerB, role: 'validator-facing' },
    ],
    devices: [...DEVICE_IDS],
  };
  // network.json is written last: its presence marks a complete network.
  writeJson(paths.network(dir), network);
  return { dir, network, genesis };
}

/** The article's example data on both config servers: target "default", versions 1..5 with contents "1".."5". */
async function seedDemoArtifacts(dir: string): Promise<void> {
  for (const id of ['A', 'B'] as const) {
    for (let version = 1; version <= demoVersions; version++) {
      await seedArtifact(
        paths.configServerDir(dir, id),
        demoTarget,
        version,
        Buffer.from(String(version), 'utf8'),
      );
    }
  }
}

function checkOptions(n: number, basePort: number): void {
  if (!Number.isInteger(n) || n < 4 || (n - 1) % 3 !== 0 || n > validatorsMax) {
    throw new ConfigChainError(
      'INIT_INVALID',
      `--validators must be 3f+1 for an integer f >= 1 (4, 7, 10, ...) and at most ${validatorsMax}, got ${n}`,
      { validators: n },
    );
  }
  if (!Number.isInteger(basePort) || basePort < 1 || basePort + 1001 + n > 65535) {
    throw new ConfigChainError(
      'INIT_INVALID',
      `--base-port must leave room for ports up to base+${1001 + n} (<= 65535), got ${basePort}`,
      { basePort },
    );
  }
}

function writeJson(file: string, value: unknown): void {
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o644 });
  chmodSync(file, 0o644);
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a network directory: genesis, CA and TLS certificates, validator/admin/device keys')
    .requiredOption('--dir <dir>', 'directory to create the network in')
    .option(
      '--validators <n>',
      'number of validators, 3f+1 >= 4',
      wholeNumberOption('--validators', 4, validatorsMax),
      4,
    )
    .option(
      '--base-port <p>',
      'base port: API p+1+i, peer p+1001+i, config servers p+101/p+102',
      wholeNumberOption('--base-port', 1, portMax),
    )
    .option('--demo', "seed the article's example data and allow its unauthenticated API", false)
    .option('--force', 'delete an existing network in --dir first (keys and chain data included)', false)
    .action(
      async (opts: { dir: string; validators: number; basePort?: number; demo: boolean; force: boolean }) => {
        try {
          const result = await initNetwork({
            dir: opts.dir,
            validators: opts.validators,
            demo: opts.demo,
            force: opts.force,
            ...(opts.basePort === undefined ? {} : { basePort: opts.basePort }),
          });
          printSummary(result);
        } catch (error) {
          if (error instanceof ConfigChainError) {
            console.error(`configchain init: ${error.message}`);
            process.exitCode = 1;
            return;
          }
          throw error;
        }
      },
    );
}

function printSummary({ dir, network, genesis }: InitResult): void {
  console.log(`Created network ${network.chainId} in ${dir}`);
  for (const v of network.validators) {
    console.log(`  validator ${v.id}: API http://${v.host}:${v.apiPort}  peer ${v.host}:${v.peerPort}`);
  }
  for (const s of network.configServers)
    console.log(`  config server ${s.id} (${s.role}): http://${s.host}:${s.port}`);
  console.log(
    `  admins: ${genesis.admins.map((a) => a.id).join(', ')} (release threshold ${genesis.releaseThreshold})`,
  );
  console.log(
    `  devices: ${network.devices.join(', ')}${network.demo ? '  (demo data seeded: target "default" v1..5)' : ''}`,
  );
  console.log(
    `Start a validator: configchain node --dir ${dir} --id 0   (or everything: configchain up --dir ${dir})`,
  );
}
