/**
 * `configchain status`: the network (each validator's view, height, primary and peer links, from
 * its GET /v1/status) and the fleet (devices, and per target how many run its current release),
 * the fleet computed from the chain verified from genesis (src/ops), never from a node's say-so.
 * A validator's reported tip is compared with the verified chain where that block is at hand.
 */
import type { Command } from 'commander';
import { newestRollouts } from '../../api/rollouts.ts';
import { faultsTolerated } from '../../consensus/certificate.ts';
import { opsProbeTimeoutMs, opsStatusRolloutsMax } from '../../constants.ts';
import { rolloutCounting } from '../../ledger/rollout.ts';
import { causeOf, fetchJson } from '../../ops/chain-reader.ts';
import {
  addOpsOptions,
  type CommandResult,
  type OpsOptions,
  openChain,
  opsAction,
  table,
  terminalProgress,
  validatorUrls,
  verifiedTip,
} from '../../ops/command.ts';
import type { StatusOutput } from '../../ops/schemas.ts';
import { fleetOf } from '../../ops/views.ts';
import { rolloutLines, rolloutView } from './rollout.ts';
import { defaultNetworkDir } from './up.ts';

type ValidatorRow = StatusOutput['validators'][number];

export function registerStatus(program: Command): void {
  addOpsOptions(
    program
      .command('status')
      .description(
        'the network (validators, view, height, primary, peers) and the fleet, verified against genesis',
      ),
    defaultNetworkDir,
  ).action(opsAction('status', status));
}

async function status(opts: OpsOptions): Promise<CommandResult> {
  const { genesis, nodeUrl, reader } = await openChain(opts, terminalProgress());
  await reader.sync();
  const tip = verifiedTip(reader);
  const urls = validatorUrls(opts.dir, genesis);
  const validators = await Promise.all(
    genesis.validators.map((v, i) =>
      validatorRow(v.id, urls[i] ?? v.apiUrl, (height, hash) => {
        const block = reader.cached(height);
        return block === undefined ? null : block.hash === hash;
      }),
    ),
  );
  const up = validators.filter((v) => v.up);
  // The view most validators report is the network's; a lone validator in a view change does not move it.
  const votes = new Map<number, number>();
  for (const v of up) if (v.view !== null) votes.set(v.view, (votes.get(v.view) ?? 0) + 1);
  const view = [...votes].sort((a, b) => b[1] - a[1] || b[0] - a[0])[0]?.[0] ?? null;
  const heights = up.flatMap((v) => (v.height === null ? [] : [v.height]));
  // Rollouts still under way (running, halted, or aborted and resumable), from the verified state.
  const rollouts = newestRollouts(reader.verifier.state.entries(), Number.MAX_SAFE_INTEGER)
    .filter(rolloutCounting)
    .slice(0, opsStatusRolloutsMax);
  const data: StatusOutput = {
    chainId: genesis.chainId,
    node: nodeUrl,
    verified: tip,
    network: {
      validators: genesis.validators.length,
      faultsTolerated: faultsTolerated(genesis.validators.length),
      up: up.length,
      view,
      primary: view === null ? null : view % genesis.validators.length,
      height: heights.length === 0 ? null : Math.max(...heights),
    },
    validators,
    fleet: fleetOf(reader.verifier.state) as StatusOutput['fleet'],
    rollouts: rollouts.map((r) => rolloutView(r) as StatusOutput['rollouts'][number]),
  };
  const rolloutText =
    rollouts.length === 0
      ? ''
      : `\nRollouts under way:\n${rollouts.flatMap((r) => rolloutLines(r).map((l) => `  ${l}`)).join('\n')}\n`;
  return { data, text: render(data) + rolloutText };
}

async function validatorRow(
  id: number,
  apiUrl: string,
  agrees: (height: number, hash: string) => boolean | null,
): Promise<ValidatorRow> {
  const down = (error: string): ValidatorRow => ({
    id,
    apiUrl,
    up: false,
    error,
    view: null,
    height: null,
    tipHash: null,
    primary: null,
    viewChanging: null,
    peersUp: null,
    peersDown: null,
    agreesWithVerifiedChain: null,
  });
  let body: unknown;
  try {
    body = await fetchJson(`${apiUrl}/v1/status`, opsProbeTimeoutMs);
  } catch (error) {
    return down(causeOf(error));
  }
  const s = body as {
    view?: unknown;
    height?: unknown;
    tipHash?: unknown;
    primary?: unknown;
    viewChanging?: unknown;
    peers?: unknown;
  };
  if (
    typeof s !== 'object' ||
    s === null ||
    !Number.isSafeInteger(s.view) ||
    !Number.isSafeInteger(s.height) ||
    typeof s.tipHash !== 'string' ||
    !Number.isSafeInteger(s.primary) ||
    !Array.isArray(s.peers)
  ) {
    return down('its /v1/status answer is malformed');
  }
  const peers = s.peers as { connected?: unknown }[];
  const peersUp = peers.filter((p) => p?.connected === true).length;
  return {
    id,
    apiUrl,
    up: true,
    error: null,
    view: s.view as number,
    height: s.height as number,
    tipHash: s.tipHash,
    primary: s.primary as number,
    viewChanging: s.viewChanging === true,
    peersUp,
    peersDown: peers.length - peersUp,
    agreesWithVerifiedChain: agrees(s.height as number, s.tipHash),
  };
}

function render(d: StatusOutput): string {
  const out: string[] = [];
  out.push(
    `Chain ${d.chainId}: verified from genesis to block ${d.verified.height} (${d.verified.time}, hash ${d.verified.hash}), read from ${d.node}`,
  );
  const n = d.network;
  out.push(
    '',
    `Network: ${n.validators} validators (tolerates ${n.faultsTolerated} faulty), ${n.up} up, view ${n.view ?? '-'}, primary ${n.primary ?? '-'}, height ${n.height ?? '-'}`,
  );
  out.push(
    table(
      ['id', 'api', 'up', 'view', 'height', 'primary', 'peers', 'tip vs verified chain'],
      d.validators.map((v) => [
        String(v.id),
        v.apiUrl,
        v.up ? 'yes' : `no (${v.error})`,
        v.view === null ? '-' : `${v.view}${v.viewChanging === true ? ' (changing)' : ''}`,
        v.height === null ? '-' : String(v.height),
        v.primary === null ? '-' : String(v.primary),
        v.peersUp === null ? '-' : `${v.peersUp} up, ${v.peersDown} down`,
        v.agreesWithVerifiedChain === null ? '-' : v.agreesWithVerifiedChain ? 'agrees' : 'DIFFERS',
      ]),
    ),
  );
  for (const v of d.validators) {
    if (v.agreesWithVerifiedChain === false) {
      out.push(
        `  WARNING: validator ${v.id} reports tip ${v.tipHash} at height ${v.height}, which is not the certified block there: it is faulty or lying`,
      );
    }
  }
  const f = d.fleet;
  out.push('', `Fleet: ${f.enrolled} device${f.enrolled === 1 ? '' : 's'} enrolled, ${f.revoked} revoked`);
  if (f.targets.length === 0) out.push('  no target has a configuration on the chain yet');
  else {
    out.push(
      table(
        ['target', 'version', 'source', 'block', 'devices', 'run current', 'failing', 'sha256'],
        f.targets.map((t) => [
          t.target,
          String(t.version),
          t.source,
          String(t.height),
          String(t.devices),
          String(t.runningCurrent),
          String(t.failing),
          t.sha256,
        ]),
      ),
    );
  }
  if (f.devices.length > 0) {
    out.push('', 'Devices:');
    out.push(
      table(
        ['device', 'target', 'group', 'status', 'last report', 'runs current'],
        f.devices.map((dev) => [
          dev.deviceId,
          dev.target,
          dev.group,
          dev.status,
          dev.lastReport === null
            ? 'none'
            : `${dev.lastReport.status} v${dev.lastReport.version} at block ${dev.lastReport.height}`,
          dev.runsCurrent ? 'yes' : 'no',
        ]),
      ),
    );
    if (f.devicesOmitted > 0) out.push(`  ... and ${f.devicesOmitted} more (see --json or devices list)`);
  }
  return `${out.join('\n')}\n`;
}
