/**
 * What the operator commands print, computed only from verified blocks (VerifiedBlock) and the
 * verified replayed state (LedgerState): a target's history with the devices that reported it,
 * the audit list of transactions, and the fleet summary. Pure: no I/O, no clock.
 */
import { opsDevicesListedMax } from '../constants.ts';
import type { LedgerState } from '../ledger/index.ts';
import type { DeviceEntry, TargetEntry, Transaction, TxBody } from '../ledger/types.ts';
import type { VerifiedBlock } from './chain-verifier.ts';

export type SignerKind = 'admin' | 'validator' | 'device';

export interface Signer {
  readonly kind: SignerKind;
  readonly id: string;
}

/**
 * Who vouches for a transaction, by the signer rule of its type. An attest carries no signature:
 * what vouches for it is the commit certificate of its block, whose validators each checked the
 * hash against their own config source before voting, so those are its signers here.
 */
export function signersOf(tx: Transaction, block: VerifiedBlock): Signer[] {
  // Widened to string so that transaction types added to the ledger later still read here.
  const type: string = tx.body.type;
  if (type === 'attest') {
    return (block.certificate?.signatures ?? []).map((s) => ({ kind: 'validator', id: String(s.validator) }));
  }
  const kind: SignerKind = type === 'heartbeat' ? 'validator' : type === 'device-report' ? 'device' : 'admin';
  return tx.signatures.map((s) => ({ kind, id: s.signer }));
}

/** "admins admin-1, admin-2", "validator 0", "device cam-7". */
export function signerText(signers: readonly Signer[]): string {
  if (signers.length === 0) return 'nobody';
  const kind = signers[0]?.kind ?? 'admin';
  return `${kind}${signers.length === 1 ? '' : 's'} ${signers.map((s) => s.id).join(', ')}`;
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

// History ---------------------------------------------------------------------------------------

export interface DeviceList {
  /** Device ids, sorted, at most opsDevicesListedMax of them. */
  readonly ids: readonly string[];
  /** How many devices in all. */
  readonly count: number;
}

export interface HistoryEntry {
  readonly height: number;
  readonly timeMs: number;
  readonly time: string;
  readonly type: 'release' | 'attest';
  readonly version: number;
  readonly sha256: string;
  readonly size: number;
  /** Null for attests, which name no media type. */
  readonly mediaType: string | null;
  readonly txId: string;
  readonly signers: readonly Signer[];
  /** True for the entry that is the target's current configuration in the verified state. */
  readonly current: boolean;
  /** Devices that reported applying exactly this version and hash. */
  readonly appliedBy: DeviceList;
  /** Devices that reported failing to apply it (status failed or mismatch). */
  readonly failedBy: DeviceList;
}

interface MutableEntry {
  readonly entry: Omit<HistoryEntry, 'current' | 'appliedBy' | 'failedBy'>;
  readonly applied: Set<string>;
  readonly failed: Set<string>;
}

/** Collects every release and attest of one target and the device reports about them. */
export class HistoryCollector {
  readonly target: string;
  readonly #entries: MutableEntry[] = [];
  readonly #byVersion = new Map<number, MutableEntry>();

  constructor(target: string) {
    this.target = target;
  }

  onBlock(block: VerifiedBlock): void {
    block.block.txs.forEach((tx, index) => {
      const body = tx.body;
      if ((body.type === 'release' || body.type === 'attest') && body.target === this.target) {
        const item: MutableEntry = {
          entry: {
            height: block.height,
            timeMs: block.block.header.timestampMs,
            time: isoTime(block.block.header.timestampMs),
            type: body.type,
            version: body.version,
            sha256: body.sha256,
            size: body.size,
            mediaType: body.type === 'release' ? body.mediaType : null,
            txId: block.txIds[index] ?? '',
            signers: signersOf(tx, block),
          },
          applied: new Set(),
          failed: new Set(),
        };
        this.#entries.push(item);
        this.#byVersion.set(body.version, item);
      } else if (body.type === 'device-report' && body.target === this.target) {
        const item = this.#byVersion.get(body.version);
        if (item === undefined || item.entry.sha256 !== body.sha256) return;
        if (body.status === 'applied') item.applied.add(body.deviceId);
        else item.failed.add(body.deviceId);
      }
    });
  }

  result(state: LedgerState): HistoryEntry[] {
    const current = state.target(this.target);
    return this.#entries.map((item) => ({
      ...item.entry,
      current: current !== undefined && current.txId === item.entry.txId,
      appliedBy: deviceList(item.applied),
      failedBy: deviceList(item.failed),
    }));
  }
}

function deviceList(ids: ReadonlySet<string>): DeviceList {
  return { ids: [...ids].sort().slice(0, opsDevicesListedMax), count: ids.size };
}

/** The release or attest of (target, version) with a release's inline content, for show and diff. */
export class VersionFinder {
  readonly #target: string;
  readonly #wanted: ReadonlySet<number>;
  readonly found = new Map<
    number,
    {
      height: number;
      type: 'release' | 'attest';
      sha256: string;
      size: number;
      mediaType: string | null;
      inline?: string;
    }
  >();

  /** How many versions of the target the chain holds, and their range, for "not found" messages. */
  seen = 0;
  lowest = 0;
  highest = 0;

  constructor(target: string, versions: readonly number[]) {
    this.#target = target;
    this.#wanted = new Set(versions);
  }

  onBlock(block: VerifiedBlock): void {
    for (const tx of block.block.txs) {
      const body = tx.body;
      if ((body.type !== 'release' && body.type !== 'attest') || body.target !== this.#target) continue;
      // Versions only grow on a verified chain, so the first is the lowest and the last the highest.
      if (this.seen === 0) this.lowest = body.version;
      this.highest = body.version;
      this.seen++;
      if (!this.#wanted.has(body.version)) continue;
      this.found.set(body.version, {
        height: block.height,
        type: body.type,
        sha256: body.sha256,
        size: body.size,
        mediaType: body.type === 'release' ? body.mediaType : null,
        ...(body.type === 'release' && body.content !== undefined ? { inline: body.content } : {}),
      });
    }
  }
}

// Audit -----------------------------------------------------------------------------------------

export interface AuditEntry {
  readonly time: string;
  readonly timeMs: number;
  readonly height: number;
  readonly index: number;
  readonly txId: string;
  readonly type: string;
  /** What the transaction is about: "target default v3", "device cam-7". */
  readonly subject: string;
  /** The rest, in words: hashes, statuses, reasons. */
  readonly detail: string;
  readonly signers: readonly Signer[];
}

/** Collects every transaction in blocks whose time is at or after sinceMs, up to `limit`. */
export class AuditCollector {
  readonly entries: AuditEntry[] = [];
  /** Matching transactions left out because of the limit. */
  omitted = 0;
  /** Heartbeats left out because they were not asked for. */
  heartbeatsSkipped = 0;
  readonly #sinceMs: number;
  readonly #limit: number;
  readonly #heartbeats: boolean;

  /**
   * Heartbeats say only "validator N is alive" and an idle chain commits one every interval, so
   * they would bury everything else; they are counted, and listed only when `heartbeats` is true.
   */
  constructor(sinceMs: number, limit: number, heartbeats = true) {
    this.#sinceMs = sinceMs;
    this.#limit = limit;
    this.#heartbeats = heartbeats;
  }

  onBlock(block: VerifiedBlock): void {
    const timeMs = block.block.header.timestampMs;
    if (timeMs < this.#sinceMs) return;
    block.block.txs.forEach((tx, index) => {
      const type: string = tx.body.type;
      if (type === 'heartbeat' && !this.#heartbeats) {
        this.heartbeatsSkipped++;
        return;
      }
      if (this.entries.length >= this.#limit) {
        this.omitted++;
        return;
      }
      const { subject, detail } = describe(tx.body);
      this.entries.push({
        time: isoTime(timeMs),
        timeMs,
        height: block.height,
        index,
        txId: block.txIds[index] ?? '',
        type: tx.body.type,
        subject,
        detail,
        signers: signersOf(tx, block),
      });
    });
  }
}

function describe(body: TxBody): { subject: string; detail: string } {
  switch (body.type) {
    case 'release':
      return {
        subject: `target ${body.target} v${body.version}`,
        detail: `sha256 ${body.sha256}, ${body.size} bytes, ${body.mediaType}${body.content === undefined ? '' : ', content inline'}`,
      };
    case 'attest':
      return {
        subject: `target ${body.target} v${body.version}`,
        detail: `sha256 ${body.sha256}, ${body.size} bytes, checked against config server B by the validators`,
      };
    case 'device-enroll':
      return {
        subject: `device ${body.deviceId}`,
        detail: `enrolled for target ${body.target}, group ${body.group}`,
      };
    case 'device-revoke':
      return { subject: `device ${body.deviceId}`, detail: `revoked: ${body.reason}` };
    case 'device-report':
      return {
        subject: `device ${body.deviceId}`,
        detail: `report #${body.seq}: ${body.status} target ${body.target} v${body.version} (sha256 ${body.sha256})${body.detail === '' ? '' : `: ${body.detail}`}`,
      };
    default:
      return describeOther(body as unknown as Readonly<Record<string, unknown>>);
  }
}

/** Heartbeats, and transaction types newer than this tool: still listed, with what their body says. */
function describeOther(body: Readonly<Record<string, unknown>>): { subject: string; detail: string } {
  if (body.type === 'heartbeat' && typeof body.timestampMs === 'number') {
    return {
      subject: `validator ${String(body.submitter)}`,
      detail: `heartbeat at ${isoTime(body.timestampMs)}`,
    };
  }
  return { subject: '-', detail: `type ${String(body.type)}` };
}

// Fleet -----------------------------------------------------------------------------------------

export interface FleetTarget {
  readonly target: string;
  readonly version: number;
  readonly sha256: string;
  readonly source: 'release' | 'attest';
  readonly height: number;
  /** Enrolled (not revoked) devices that follow this target. */
  readonly devices: number;
  /** Of those, how many last reported applying the current version and hash. */
  readonly runningCurrent: number;
  /** Of those, how many last reported a failure (failed or mismatch). */
  readonly failing: number;
}

export interface FleetDevice {
  readonly deviceId: string;
  readonly target: string;
  readonly group: string;
  readonly status: 'enrolled' | 'revoked';
  readonly lastReport: {
    readonly version: number;
    readonly sha256: string;
    readonly status: string;
    readonly height: number;
  } | null;
  /** True when its last report is "applied" of its target's current version and hash. */
  readonly runsCurrent: boolean;
}

export interface Fleet {
  readonly enrolled: number;
  readonly revoked: number;
  readonly targets: readonly FleetTarget[];
  /** At most opsDevicesListedMax devices, sorted by id. */
  readonly devices: readonly FleetDevice[];
  readonly devicesOmitted: number;
}

/** The fleet as the verified state says it is. */
export function fleetOf(state: LedgerState): Fleet {
  const targets = new Map<string, TargetEntry>();
  const devices: DeviceEntry[] = [];
  for (const [, entry] of state.entries()) {
    if (entry.kind === 'target') targets.set(entry.target, entry);
    else if (entry.kind === 'device') devices.push(entry);
  }
  const runs = (d: DeviceEntry): boolean => {
    const current = targets.get(d.target);
    return (
      current !== undefined &&
      d.lastReport !== null &&
      d.lastReport.status === 'applied' &&
      d.lastReport.version === current.version &&
      d.lastReport.sha256 === current.sha256
    );
  };
  const active = devices.filter((d) => d.status === 'enrolled');
  const byTarget = new Map<string, DeviceEntry[]>();
  for (const d of active) {
    const list = byTarget.get(d.target);
    if (list === undefined) byTarget.set(d.target, [d]);
    else list.push(d);
  }
  const fleetTargets = [...targets.values()]
    .sort((x, y) => (x.target < y.target ? -1 : x.target > y.target ? 1 : 0))
    .map((t) => {
      const following = byTarget.get(t.target) ?? [];
      return {
        target: t.target,
        version: t.version,
        sha256: t.sha256,
        source: t.source,
        height: t.height,
        devices: following.length,
        runningCurrent: following.filter(runs).length,
        failing: following.filter((d) => d.lastReport !== null && d.lastReport.status !== 'applied').length,
      };
    });
  devices.sort((x, y) => (x.deviceId < y.deviceId ? -1 : x.deviceId > y.deviceId ? 1 : 0));
  return {
    enrolled: active.length,
    revoked: devices.length - active.length,
    targets: fleetTargets,
    devices: devices.slice(0, opsDevicesListedMax).map((d) => ({
      deviceId: d.deviceId,
      target: d.target,
      group: d.group,
      status: d.status,
      lastReport: d.lastReport === null ? null : { ...d.lastReport },
      runsCurrent: d.status === 'enrolled' && runs(d),
    })),
    devicesOmitted: Math.max(0, devices.length - opsDevicesListedMax),
  };
}
