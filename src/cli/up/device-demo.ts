/**
 * The device part of `configchain up`'s demo (issue 5's acceptance): a device process applies
 * versions as they are published, and its reports appear in the target's history.
 *
 *   1. enroll the network's device (DIR/devices/<id>/) on the ledger for a target of its own
 *      ("fleet"), which also points its device.json at that target;
 *   2. start the device agent as its own OS process (`configchain device --dir DIR --id ID`);
 *   3. publish five versions of the target one after another, as `configchain publish` does, and
 *      after each wait (bounded) until the device's report of that version is on the ledger.
 *
 * Like the article's demo it reads the ledger first: on a network that ran before, it publishes
 * the five versions after the current one. Every step is printed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ApiClient, ApiRequestError } from '../../api/client.ts';
import { demoDeviceReportWaitMs, operatorRequestTimeoutMs } from '../../constants.ts';
import { ConfigChainError } from '../../errors.ts';
import { enrollDevice } from '../commands/devices.ts';
import { type Print, publish } from '../commands/publish.ts';
import { type Child, logTail } from './processes.ts';

export interface DeviceDemoOptions {
  readonly dir: string;
  readonly deviceId: string;
  readonly target: string;
  /** How many versions to publish. */
  readonly versions: number;
  readonly validatorUrl: string;
  /** Starts the device agent process; called once the device is enrolled. */
  readonly startDevice: () => Child;
  readonly interrupted: () => boolean;
  readonly print: Print;
}

export interface DeviceDemoStep {
  readonly version: number;
  readonly published: boolean;
  /** The device's report of this version: applied, failed or mismatch; null when none came. */
  readonly report: string | null;
  readonly ok: boolean;
}

type DeviceReport = Awaited<ReturnType<ApiClient['targetHistory']>>['reports'][number];

export interface DeviceDemoResult {
  readonly ok: boolean;
  readonly enrolled: boolean;
  readonly steps: readonly DeviceDemoStep[];
}

export function fleetContent(version: number): string {
  return `fleet config v${version}\n`;
}

export async function runDeviceDemo(options: DeviceDemoOptions): Promise<DeviceDemoResult> {
  const { print, deviceId, target } = options;
  const client = new ApiClient(options.validatorUrl, { timeoutMs: operatorRequestTimeoutMs });
  print(`Device demo: ${deviceId} follows target "${target}" and applies each version as it is published.`);

  print('');
  const registered = await client.device(deviceId).catch(() => null);
  if (registered?.status === 'revoked') {
    print(
      `${deviceId} was revoked on this ledger and a revoked id is never enrolled again, so the device demo cannot run; create a new network (configchain init --dir ${options.dir} --demo --force) to see it.`,
    );
    return { ok: false, enrolled: false, steps: [] };
  }
  if (registered !== null && registered.status === 'enrolled' && registered.target === target) {
    print(
      `${deviceId} is already enrolled for "${target}" (since block ${registered.enrolledAt}; this network ran before).`,
    );
  } else {
    print(`Enroll the device on the ledger (an admin-signed device-enroll transaction):`);
    try {
      await enrollDevice({
        dir: options.dir,
        id: deviceId,
        target,
        print: (line) => print(`  ${line}`),
      });
    } catch (err) {
      if (!(err instanceof ConfigChainError)) throw err;
      print(`  enrollment failed: ${err.message}`);
      print('Device demo: the device could not be enrolled, so it was not started.');
      return { ok: false, enrolled: false, steps: [] };
    }
  }

  print('');
  const device = options.startDevice();
  print(
    `Started the device agent: configchain device --dir ${options.dir} --id ${deviceId}  (log ${device.logFile})`,
  );

  const current = await currentVersion(client, target);
  const first = current + 1;
  if (current > 0)
    print(`Target "${target}" is at version ${current} on the ledger (this network ran before).`);

  const steps: DeviceDemoStep[] = [];
  for (let version = first; version < first + options.versions; version++) {
    if (options.interrupted()) break;
    const step = await publishAndWait(options, client, device, version);
    steps.push(step);
    if (!step.ok) break;
  }
  const ok = steps.length === options.versions && steps.every((s) => s.ok);
  print('');
  print(
    ok
      ? `Device demo: ${deviceId} applied versions ${first}..${first + options.versions - 1} and reported each on the ledger.`
      : 'Device demo: NOT every version was applied and reported (see above).',
  );
  return { ok, enrolled: true, steps };
}

async function publishAndWait(
  options: DeviceDemoOptions,
  client: ApiClient,
  device: Child,
  version: number,
): Promise<DeviceDemoStep> {
  const { print, deviceId, target } = options;
  const content = fleetContent(version);
  // The files published are kept beside the network, where an operator can look at them.
  const file = join(options.dir, 'demo', `${target}-v${version}.txt`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  print('');
  print(`Publish ${target} version ${version}, content ${JSON.stringify(content)}:`);
  try {
    await publish({
      dir: options.dir,
      target,
      file,
      version,
      mediaType: 'text/plain',
      print: (line) => print(`  ${line}`),
    });
  } catch (err) {
    if (!(err instanceof ConfigChainError)) throw err;
    print(`  publish failed: ${err.message}`);
    return { version, published: false, report: null, ok: false };
  }

  print(`  waiting for ${deviceId} to apply it and report ...`);
  const deadline = Date.now() + demoDeviceReportWaitMs;
  for (;;) {
    if (device.exit !== null) {
      print(
        `  the device agent exited (code ${device.exit.code}, signal ${device.exit.signal}); its log ${device.logFile} ends with:\n${logTail(device.logFile)}`,
      );
      return { version, published: true, report: null, ok: false };
    }
    const report = await findReport(client, target, deviceId, version);
    if (report !== null) {
      const ok = report.status === 'applied';
      print(
        `  ${deviceId} reported version ${report.version} ${report.status} (seq ${report.seq}, block ${report.height})${report.detail === '' ? '' : `: ${report.detail}`}${ok ? '' : '   UNEXPECTED'}`,
      );
      return { version, published: true, report: report.status, ok };
    }
    if (Date.now() > deadline || options.interrupted()) {
      print(
        `  no report of version ${version} from ${deviceId} on the ledger after ${demoDeviceReportWaitMs / 1000} s; the device's log ${device.logFile} ends with:\n${logTail(device.logFile)}`,
      );
      return { version, published: true, report: null, ok: false };
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function currentVersion(client: ApiClient, target: string): Promise<number> {
  try {
    return (await client.target(target)).version;
  } catch (err) {
    if (err instanceof ApiRequestError && err.status === 404) return 0;
    throw err;
  }
}

/** The device's newest report of this version in the target's history, or null. */
async function findReport(
  client: ApiClient,
  target: string,
  deviceId: string,
  version: number,
): Promise<DeviceReport | null> {
  // A failed read is not an answer: the caller asks again until its deadline.
  const history = await client.targetHistory(target, 50).catch(() => null);
  return history?.reports.find((r) => r.deviceId === deviceId && r.version === version) ?? null;
}
