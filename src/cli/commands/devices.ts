/**
 * `configchain devices enroll|revoke|list`: the device registry on the ledger.
 *
 * enroll and revoke are transactions signed by one admin (signAsAdmin), submitted and waited for.
 * enroll takes the device's public key from --public-key, or from the device's own folder in the
 * network directory (DIR/devices/<id>/device.key and device.json, as init writes them), creating
 * that folder with a new key when it is missing; device.json then names the enrolled target, so
 * the device agent follows what the ledger says. list reads the registry from the chain verified
 * from genesis (src/ops openChain), so a lying node cannot add, hide or alter a device.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { deviceGroupLengthMax, deviceIdLengthMax, revokeReasonLengthMax } from '../../constants.ts';
import { generateKeyPair, publicKeyFromHex } from '../../crypto/ed25519.ts';
import { loadPrivateKey, savePrivateKey } from '../../crypto/keyfile.ts';
import type { DeviceId, Height, PublicKeyHex, TargetName, TxId } from '../../encoding/brand.ts';
import {
  type DeviceEnrollBody,
  type DeviceEntry,
  type DeviceRevokeBody,
  type Genesis,
  type LedgerState,
  signAsAdmin,
} from '../../ledger/index.ts';
import { paths } from '../../node/layout.ts';
import {
  addOpsOptions,
  type CommandResult,
  type OpsOptions,
  openChain,
  opsAction,
  terminalProgress,
} from '../../ops/command.ts';
import type { DevicesOutput } from '../../ops/schemas.ts';
import {
  loadNetworkGenesis,
  loadSigningAdmin,
  OperatorError,
  type Print,
  runWrite,
  submitAndWait,
  Validators,
  writeJsonAtomic,
} from './publish.ts';
import { defaultNetworkDir } from './up.ts';

/** The device.json init writes: what the device agent needs to find its target and servers. */
export interface DeviceFile {
  readonly deviceId: string;
  readonly publicKey: string;
  readonly target: string;
  readonly configServer: string;
  readonly validators: readonly string[];
  readonly [extra: string]: unknown;
}

export interface EnrollOptions {
  readonly dir: string;
  readonly id: string;
  /** Default: the target in the device's device.json, else "default". */
  readonly target?: string;
  readonly group?: string;
  /** The device's public key (hex); without it the key in DIR/devices/<id>/ is used or created. */
  readonly publicKey?: string;
  readonly admin?: string;
  readonly node?: string;
  readonly print: Print;
}

export interface DeviceTxResult {
  readonly deviceId: string;
  readonly txId: TxId;
  readonly height: Height;
}

export interface EnrollResult extends DeviceTxResult {
  readonly publicKey: string;
  readonly target: string;
  readonly group: string;
  /** The device folder written or updated; null when --public-key named a key held elsewhere. */
  readonly deviceDir: string | null;
  readonly createdKey: boolean;
}

const NAME = /^[A-Za-z0-9._:@-]+$/;

export async function enrollDevice(options: EnrollOptions): Promise<EnrollResult> {
  const dir = resolve(options.dir);
  const genesis = loadNetworkGenesis(dir);
  const deviceId = checkDeviceId(options.id);
  const group = options.group ?? '';
  if (group.length > deviceGroupLengthMax || !/^[A-Za-z0-9._:@-]*$/.test(group)) {
    throw new OperatorError(
      'GROUP_INVALID',
      `--group must be at most ${deviceGroupLengthMax} characters of letters, digits and . _ : @ -, got ${JSON.stringify(group)}`,
    );
  }
  const existing = readDeviceFile(dir, deviceId);
  const target = options.target ?? existing?.target ?? 'default';
  if (target.length < 1 || !NAME.test(target)) {
    throw new OperatorError(
      'TARGET_INVALID',
      `--target must be a target name such as "default", got ${JSON.stringify(target)}`,
    );
  }
  const admin = loadSigningAdmin(dir, genesis, options.admin);

  let publicKey: string;
  let createdKey = false;
  let deviceDir: string | null = null;
  if (options.publicKey !== undefined) {
    publicKey = checkPublicKey(options.publicKey);
  } else {
    const key = deviceKey(dir, deviceId);
    publicKey = key.publicKey;
    createdKey = key.created;
    deviceDir = resolve(paths.deviceFile(dir, deviceId), '..');
  }

  const body: DeviceEnrollBody = {
    type: 'device-enroll',
    chainId: genesis.chainId,
    deviceId: deviceId as DeviceId,
    publicKey: publicKey as PublicKeyHex,
    group,
    target: target as TargetName,
  };
  const validators = new Validators(genesis, options.node);
  options.print(
    `Enrolling device ${deviceId} (public key ${publicKey}) for target "${target}"${group === '' ? '' : `, group "${group}"`}, signed by ${admin.id}${createdKey ? `; created its key in ${deviceDir}` : ''}`,
  );
  const committed = await submitAndWait(
    validators,
    signAsAdmin(body, admin.id, admin.privateKey),
    `enrollment of device ${deviceId}`,
  );
  // device.json follows the ledger, so the agent asks for the target it was enrolled for.
  if (deviceDir !== null) writeDeviceFile(dir, genesis, deviceId, publicKey, target, existing);
  options.print(`  committed in block ${committed.height}, tx ${committed.txId}`);
  return {
    deviceId,
    publicKey,
    target,
    group,
    deviceDir,
    createdKey,
    txId: committed.txId,
    height: committed.height,
  };
}

export interface RevokeOptions {
  readonly dir: string;
  readonly id: string;
  readonly reason: string;
  readonly admin?: string;
  readonly node?: string;
  readonly print: Print;
}

export async function revokeDevice(options: RevokeOptions): Promise<DeviceTxResult & { reason: string }> {
  const dir = resolve(options.dir);
  const genesis = loadNetworkGenesis(dir);
  const deviceId = checkDeviceId(options.id);
  if (options.reason.length > revokeReasonLengthMax) {
    throw new OperatorError(
      'REASON_TOO_LONG',
      `--reason is ${options.reason.length} characters, at most ${revokeReasonLengthMax} fit; say it shorter`,
    );
  }
  const admin = loadSigningAdmin(dir, genesis, options.admin);
  const body: DeviceRevokeBody = {
    type: 'device-revoke',
    chainId: genesis.chainId,
    deviceId: deviceId as DeviceId,
    reason: options.reason,
  };
  options.print(`Revoking device ${deviceId} (${JSON.stringify(options.reason)}), signed by ${admin.id}`);
  const committed = await submitAndWait(
    new Validators(genesis, options.node),
    signAsAdmin(body, admin.id, admin.privateKey),
    `revocation of device ${deviceId}`,
  );
  options.print(`  committed in block ${committed.height}, tx ${committed.txId}`);
  return { deviceId, reason: options.reason, txId: committed.txId, height: committed.height };
}

/** Every device of the registry in this (verified) state, sorted by device id. */
export function devicesOf(state: LedgerState): DeviceEntry[] {
  const devices: DeviceEntry[] = [];
  for (const [, entry] of state.entries()) if (entry.kind === 'device') devices.push(entry);
  return devices.sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
}

/**
 * `devices list`: the registry as the chain verified from genesis says it is, not as the node
 * answers GET /v1/devices, so a node cannot hide a revocation or invent a device.
 */
export async function listDevices(opts: OpsOptions): Promise<CommandResult> {
  const { reader } = await openChain(opts, terminalProgress());
  await reader.sync();
  const devices = devicesOf(reader.verifier.state);
  const data: DevicesOutput = devices.map((d) => ({ ...d }));
  const text =
    devices.length === 0
      ? 'No devices are enrolled; enroll one with configchain devices enroll --dir DIR --id ID\n'
      : `${deviceTable(devices).join('\n')}\n`;
  return { data, text };
}

/** The registry as a table: one line per device. */
export function deviceTable(devices: readonly DeviceEntry[]): string[] {
  const rows = devices.map((d) => [
    d.deviceId,
    d.status,
    d.target,
    d.group === '' ? '-' : d.group,
    String(d.enrolledAt),
    d.lastReport === null
      ? '-'
      : `v${d.lastReport.version} ${d.lastReport.status} at ${d.lastReport.height} (seq ${d.lastSeq})`,
    `${d.publicKey.slice(0, 16)}...`,
  ]);
  const header = ['DEVICE', 'STATUS', 'TARGET', 'GROUP', 'ENROLLED AT', 'LAST REPORT', 'PUBLIC KEY'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

function checkDeviceId(id: string): string {
  if (id.length < 1 || id.length > deviceIdLengthMax || !NAME.test(id)) {
    throw new OperatorError(
      'DEVICE_ID_INVALID',
      `--id must be 1-${deviceIdLengthMax} characters of letters, digits and . _ : @ -, got ${JSON.stringify(id)}`,
    );
  }
  return id;
}

function checkPublicKey(hex: string): string {
  const value = hex.trim().toLowerCase();
  try {
    if (!/^[0-9a-f]{64}$/.test(value)) throw new Error('not 64 hex characters');
    publicKeyFromHex(value);
  } catch (err) {
    throw new OperatorError(
      'PUBLIC_KEY_INVALID',
      `--public-key must be a raw Ed25519 public key as 64 hex characters (${(err as Error).message}); device.json's publicKey has that form`,
    );
  }
  return value;
}

/** The device's key in its folder, created (mode 0600) when there is none. */
function deviceKey(dir: string, deviceId: string): { publicKey: string; created: boolean } {
  const file = paths.deviceKey(dir, deviceId);
  if (existsSync(file)) return { publicKey: loadPrivateKey(file).publicKeyHex, created: false };
  const pair = generateKeyPair();
  savePrivateKey(file, pair.privateKey);
  return { publicKey: pair.publicKeyHex, created: true };
}

function readDeviceFile(dir: string, deviceId: string): DeviceFile | null {
  const file = paths.deviceFile(dir, deviceId);
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as DeviceFile;
  } catch (err) {
    throw new OperatorError(
      'DEVICE_FILE_INVALID',
      `${file} is not JSON (${(err as Error).message}); fix or delete it (enroll writes a new one)`,
    );
  }
}

function writeDeviceFile(
  dir: string,
  genesis: Genesis,
  deviceId: string,
  publicKey: string,
  target: string,
  existing: DeviceFile | null,
): void {
  const deviceFacing =
    genesis.configSources.find((s) => s.role === 'device-facing') ?? genesis.configSources[0];
  const file: DeviceFile = {
    ...(existing ?? {}),
    deviceId,
    publicKey,
    target,
    configServer: existing?.configServer ?? deviceFacing?.url ?? '',
    validators: existing?.validators ?? genesis.validators.map((v) => v.apiUrl),
  };
  writeJsonAtomic(paths.deviceFile(dir, deviceId), file);
}

export function registerDevices(program: Command): void {
  const devices = program
    .command('devices')
    .description('the device registry: enroll, revoke and list devices');
  const common = (cmd: Command) =>
    cmd
      .requiredOption('--dir <dir>', 'the network directory (its genesis.json, admins/ and devices/)')
      .option('--node <url>', 'a validator API URL; default: every validator of genesis, in turn')
      .option('--json', 'print the result as JSON only', false);

  common(
    devices
      .command('enroll')
      .description(
        'enroll a device on the ledger (admin-signed); without --public-key uses or creates DIR/devices/<id>/device.key',
      )
      .requiredOption('--id <id>', 'the device id')
      .option('--target <target>', 'the target the device follows; default: device.json\'s, else "default"')
      .option('--group <group>', 'rollout group', '')
      .option('--public-key <hex>', "the device's Ed25519 public key (64 hex characters)")
      .option('--admin <id>', 'the admin who signs; default: the first admin key in DIR/admins'),
  ).action(
    (opts: {
      dir: string;
      id: string;
      target?: string;
      group: string;
      publicKey?: string;
      admin?: string;
      node?: string;
      json: boolean;
    }) =>
      runWrite('devices enroll', opts.json, (print) =>
        enrollDevice({
          dir: opts.dir,
          id: opts.id,
          group: opts.group,
          ...(opts.target !== undefined ? { target: opts.target } : {}),
          ...(opts.publicKey !== undefined ? { publicKey: opts.publicKey } : {}),
          ...(opts.admin !== undefined ? { admin: opts.admin } : {}),
          ...(opts.node !== undefined ? { node: opts.node } : {}),
          print,
        }),
      ),
  );

  common(
    devices
      .command('revoke')
      .description(
        'revoke a device on the ledger (admin-signed): validators then refuse its requests and reports',
      )
      .requiredOption('--id <id>', 'the device id')
      .requiredOption('--reason <text>', 'why, kept on the ledger')
      .option('--admin <id>', 'the admin who signs; default: the first admin key in DIR/admins'),
  ).action(
    (opts: { dir: string; id: string; reason: string; admin?: string; node?: string; json: boolean }) =>
      runWrite('devices revoke', opts.json, (print) =>
        revokeDevice({
          dir: opts.dir,
          id: opts.id,
          reason: opts.reason,
          ...(opts.admin !== undefined ? { admin: opts.admin } : {}),
          ...(opts.node !== undefined ? { node: opts.node } : {}),
          print,
        }),
      ),
  );

  addOpsOptions(
    devices
      .command('list')
      .description('list the device registry, read from the chain verified against genesis'),
    defaultNetworkDir,
  ).action(opsAction('devices list', listDevices));
}
