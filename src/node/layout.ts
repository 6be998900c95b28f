/**
 * The network directory made by `configchain init` (see docs/operations.md): where every file of
 * a network lives, and the network.json document that says which processes listen where.
 * The node, `configchain up`, the config servers, the device agent and the tests all find their
 * files through these functions, so the layout is written down in exactly one place.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ConfigChainError } from '../errors.ts';
import { type Genesis, parseGenesis } from '../ledger/index.ts';

export interface NetworkValidator {
  readonly id: number;
  readonly host: string;
  readonly apiPort: number;
  readonly peerPort: number;
}

export interface NetworkConfigServer {
  readonly id: 'A' | 'B';
  readonly host: string;
  readonly port: number;
  readonly role: 'device-facing' | 'validator-facing';
}

export interface NetworkFile {
  readonly chainId: string;
  readonly demo: boolean;
  readonly validators: readonly NetworkValidator[];
  readonly configServers: readonly NetworkConfigServer[];
  readonly devices: readonly string[];
}

/** Ports of a network whose base port is P: validator i API P+1+i, peer P+1001+i, A P+101, B P+102. */
export function defaultPorts(basePort: number, validators: number) {
  return {
    api: Array.from({ length: validators }, (_, i) => basePort + 1 + i),
    peer: Array.from({ length: validators }, (_, i) => basePort + 1001 + i),
    configServerA: basePort + 101,
    configServerB: basePort + 102,
  };
}

/**
 * A base port in [from, from + span) whose every port of the layout above (APIs, peers, both
 * config servers) is free on 127.0.0.1 right now. For tests and benchmarks that run networks side
 * by side; another process can still take a port before it is bound, so callers retry on
 * EADDRINUSE.
 */
export async function findFreeBasePort(validators: number, from = 20_000, span = 18_000): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = from + Math.floor(Math.random() * span);
    const ports = defaultPorts(base, validators);
    const all = [...ports.api, ...ports.peer, ports.configServerA, ports.configServerB];
    const free = await Promise.all(all.map(isPortFree));
    if (free.every(Boolean)) return base;
  }
  throw new Error(
    `no base port in ${from}-${from + span} has all its ports free; stop other networks and retry`,
  );
}

function isPortFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

/** The default base port, which gives the article's ports 5001-5004 and 6001-6004. */
export const defaultBasePort = 5000;

export const paths = {
  network: (dir: string) => join(dir, 'network.json'),
  genesis: (dir: string) => join(dir, 'genesis.json'),
  caDir: (dir: string) => join(dir, 'ca'),
  caCert: (dir: string) => join(dir, 'ca', 'ca.crt'),
  caKey: (dir: string) => join(dir, 'ca', 'ca.key'),
  validatorsDir: (dir: string) => join(dir, 'validators'),
  validatorDir: (dir: string, id: number) => join(dir, 'validators', String(id)),
  validatorKey: (dir: string, id: number) => join(dir, 'validators', String(id), 'validator.key'),
  tlsCert: (dir: string, id: number) => join(dir, 'validators', String(id), 'tls.crt'),
  tlsKey: (dir: string, id: number) => join(dir, 'validators', String(id), 'tls.key'),
  dataDir: (dir: string, id: number) => join(dir, 'validators', String(id), 'data'),
  database: (dir: string, id: number) => join(dir, 'validators', String(id), 'data', 'chain.sqlite'),
  nodeLog: (dir: string, id: number) => join(dir, 'validators', String(id), 'data', 'node.log'),
  adminsDir: (dir: string) => join(dir, 'admins'),
  adminKey: (dir: string, adminId: string) => join(dir, 'admins', `${adminId}.key`),
  configServersDir: (dir: string) => join(dir, 'config-servers'),
  configServerDir: (dir: string, id: string) => join(dir, 'config-servers', id),
  artifactsDir: (dir: string, id: string) => join(dir, 'config-servers', id, 'artifacts'),
  devicesDir: (dir: string) => join(dir, 'devices'),
  deviceKey: (dir: string, deviceId: string) => join(dir, 'devices', deviceId, 'device.key'),
  deviceFile: (dir: string, deviceId: string) => join(dir, 'devices', deviceId, 'device.json'),
} as const;

/** Reads and checks genesis.json; a missing or broken file is an operating error that says to run init. */
export function loadGenesisFile(dir: string): Genesis {
  const file = paths.genesis(dir);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigChainError(
      'NODE_START',
      `cannot read ${file} (${(error as Error).message}); run configchain init`,
      {
        file,
      },
    );
  }
  return parseGenesis(json);
}

/** Reads and checks network.json; a missing or broken file is an operating error that says to run init. */
export function loadNetworkFile(dir: string): NetworkFile {
  const file = paths.network(dir);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigChainError(
      'NETWORK_MISSING',
      `cannot read ${file} (${(error as Error).message}); create a network first: configchain init --dir ${dir} --demo`,
      { file },
    );
  }
  return checkNetworkFile(parsed, file);
}

function checkNetworkFile(value: unknown, file: string): NetworkFile {
  const fail = (what: string): never => {
    throw new ConfigChainError(
      'NETWORK_INVALID',
      `${file}: ${what}; re-create it with configchain init --force`,
      {
        file,
      },
    );
  };
  if (typeof value !== 'object' || value === null) return fail('not a JSON object');
  const v = value as Record<string, unknown>;
  if (typeof v.chainId !== 'string' || v.chainId === '') fail('chainId must be a non-empty string');
  if (!Array.isArray(v.validators) || v.validators.length === 0) fail('validators must be a non-empty list');
  if (!Array.isArray(v.configServers)) fail('configServers must be a list');
  if (!Array.isArray(v.devices)) fail('devices must be a list');
  const validators = v.validators as unknown[];
  validators.forEach((entry, index) => {
    const e = entry as Record<string, unknown> | null;
    if (
      e === null ||
      typeof e !== 'object' ||
      e.id !== index ||
      typeof e.host !== 'string' ||
      !isPort(e.apiPort) ||
      !isPort(e.peerPort)
    ) {
      fail(`validators[${index}] must be {id: ${index}, host, apiPort, peerPort}`);
    }
  });
  for (const entry of v.configServers as unknown[]) {
    const e = entry as Record<string, unknown> | null;
    if (e === null || typeof e !== 'object' || (e.id !== 'A' && e.id !== 'B') || !isPort(e.port)) {
      fail('each config server must be {id: "A"|"B", host, port, role}');
    }
  }
  return value as NetworkFile;
}

function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value < 65536;
}

export function apiUrlOf(v: NetworkValidator): string {
  return `http://${v.host}:${v.apiPort}`;
}

export function configServerUrl(network: NetworkFile, id: 'A' | 'B'): string {
  const server = network.configServers.find((s) => s.id === id);
  if (server === undefined) {
    throw new ConfigChainError('NETWORK_INVALID', `network.json names no config server ${id}`, { id });
  }
  return `http://${server.host}:${server.port}`;
}
