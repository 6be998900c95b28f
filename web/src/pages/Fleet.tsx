/**
 * Fleet: the devices of the registry (GET /v1/devices, paged by cursor), enrolled or revoked,
 * their last report, and whether they run their target's current version: compliant (applied the
 * current version), behind (an older one, or no report yet) or failed (the last report failed or
 * did not match). Filters by target and by group.
 */
import { useMemo, useState } from 'react';
import { devicesPageMax } from '../../../src/constants.ts';
import { api, explain, isNotFound, type TargetEntry } from '../api.ts';
import { useLive } from '../live.tsx';
import { type RolloutRecord, recentRollouts } from '../rollouts.ts';
import { Link, Loading, Notice, useLoad } from '../ui.tsx';
import { waveBucket, waveIndex } from '../waves.ts';

/** Pages of devices the dashboard reads at most (devicesPageMax each). */
const devicePagesMax = 10;

type Device = Awaited<ReturnType<typeof loadDevices>>['devices'][number];
type Compliance = 'compliant' | 'behind' | 'failed' | 'revoked' | 'no target';

async function loadDevices() {
  const devices = [];
  let after: string | undefined;
  let truncated = false;
  for (let page = 0; ; page++) {
    if (page === devicePagesMax) {
      truncated = true;
      break;
    }
    const answer = await api.call('devices', {
      query: after === undefined ? { limit: devicesPageMax } : { after, limit: devicesPageMax },
    });
    devices.push(...answer.body.devices);
    if (answer.body.next === null) break;
    after = answer.body.next;
  }
  const targets = [...new Set(devices.map((d) => d.target))];
  const current = new Map<string, TargetEntry | null>();
  await Promise.all(
    targets.map(async (t) => {
      try {
        current.set(t, await api.target(t));
      } catch (err) {
        if (!isNotFound(err)) throw err;
        current.set(t, null);
      }
    }),
  );
  return { devices, current, truncated };
}

function compliance(d: Device, target: TargetEntry | null | undefined): Compliance {
  if (d.status === 'revoked') return 'revoked';
  if (target === null || target === undefined) return 'no target';
  const r = d.lastReport;
  if (r === null) return 'behind';
  if (r.status !== 'applied') return 'failed';
  if (r.version >= target.version && r.sha256 === target.sha256) return 'compliant';
  return 'behind';
}

export function FleetPage() {
  const live = useLive();
  const height = live.status?.height ?? -1;
  const fleet = useLoad(loadDevices, [height]);
  const [target, setTarget] = useState('');
  const [group, setGroup] = useState('');
  const rows = useMemo(() => {
    if (fleet.state !== 'ok') return [];
    return fleet.value.devices
      .filter((d) => (target === '' || d.target === target) && (group === '' || d.group === group))
      .map((d) => ({ d, c: compliance(d, fleet.value.current.get(d.target)) }));
  }, [fleet, target, group]);

  if (fleet.state === 'loading') return <Loading what="the fleet" />;
  if (fleet.state === 'error') {
    return (
      <section>
        <h1>Fleet</h1>
        <Notice kind="error" title="Could not list the devices">
          {explain(fleet.error, 'GET /v1/devices')}
        </Notice>
      </section>
    );
  }
  const { devices, current, truncated } = fleet.value;
  const targets = [...new Set(devices.map((d) => d.target))].sort();
  const groups = [...new Set(devices.map((d) => d.group))].sort();
  const counts = new Map<Compliance, number>();
  for (const r of rows) counts.set(r.c, (counts.get(r.c) ?? 0) + 1);

  return (
    <section>
      <h1>Fleet</h1>
      {devices.length === 0 ? (
        <Notice kind="empty" title="No devices are enrolled" testId="fleet-empty">
          Enroll a device with configchain devices enroll (an admin signs it); it shows here once the
          enrollment commits.
        </Notice>
      ) : (
        <>
          <div className="filters">
            <label>
              Target{' '}
              <select value={target} onChange={(e) => setTarget(e.target.value)} data-testid="filter-target">
                <option value="">all</option>
                {targets.map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Group{' '}
              <select value={group} onChange={(e) => setGroup(e.target.value)} data-testid="filter-group">
                <option value="">all</option>
                {groups.map((g) => (
                  <option key={g} value={g}>
                    {g}
                  </option>
                ))}
              </select>
            </label>
            <span className="muted" data-testid="fleet-counts">
              {(['compliant', 'behind', 'failed', 'revoked', 'no target'] as const)
                .filter((c) => counts.has(c))
                .map((c) => `${counts.get(c)} ${c}`)
                .join(' · ')}
            </span>
          </div>
          {rows.length === 0 ? (
            <Notice kind="empty" title="No device matches these filters">
              Set target and group back to “all”.
            </Notice>
          ) : (
            <div className="table-wrap">
              <table data-testid="devices">
                <thead>
                  <tr>
                    <th>Device</th>
                    <th>Group</th>
                    <th>Target</th>
                    <th>Registry</th>
                    <th>Last report</th>
                    <th>Against current</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map(({ d, c }) => {
                    const cur = current.get(d.target);
                    return (
                      <tr key={d.deviceId} data-device={d.deviceId} data-compliance={c}>
                        <td>{d.deviceId}</td>
                        <td>{d.group}</td>
                        <td>
                          <Link to={`/configs/${encodeURIComponent(d.target)}`}>{d.target}</Link>
                        </td>
                        <td className={d.status === 'enrolled' ? 'ok' : 'bad'}>
                          {d.status} <span className="muted">(block #{d.enrolledAt})</span>
                        </td>
                        <td>
                          {d.lastReport === null ? (
                            <span className="muted">none yet</span>
                          ) : (
                            <>
                              v{d.lastReport.version} {d.lastReport.status} in{' '}
                              <Link to={`/ledger/${d.lastReport.height}`}>#{d.lastReport.height}</Link>
                            </>
                          )}
                        </td>
                        <td className={c === 'compliant' ? 'ok' : c === 'behind' ? 'warn' : 'bad'}>
                          {c}
                          {cur === null || cur === undefined ? '' : ` (current v${cur.version})`}
                        </td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
          {truncated ? (
            <p className="muted">Only the first {devicePagesMax * devicesPageMax} devices are shown.</p>
          ) : null}
        </>
      )}
      <Rollouts devices={devices} height={height} />
    </section>
  );
}

interface WaveRow {
  readonly wave: number;
  readonly upTo: number;
  readonly devices: number;
  readonly applied: number;
  readonly failed: number;
}

async function waveRows(r: RolloutRecord, devices: readonly Device[]): Promise<WaveRow[]> {
  const rows = r.waves.map((upTo, wave) => ({ wave, upTo, devices: 0, applied: 0, failed: 0 }));
  for (const d of devices) {
    if (d.target !== r.target || d.status !== 'enrolled') continue;
    const row = rows[waveIndex(await waveBucket(d.deviceId, r.rolloutId), r.waves)];
    if (row === undefined) continue;
    row.devices++;
    const report = d.lastReport;
    if (report === null || report.version !== r.version) continue;
    if (report.status === 'applied') row.applied++;
    else row.failed++;
  }
  return rows;
}

/** Rollouts recorded on the chain and, per wave, what its devices last reported. */
function Rollouts({ devices, height }: { readonly devices: readonly Device[]; readonly height: number }) {
  const rollouts = useLoad(async () => {
    const { rollouts, truncated } = await recentRollouts();
    const withWaves = await Promise.all(rollouts.map(async (r) => ({ r, rows: await waveRows(r, devices) })));
    return { withWaves, truncated };
  }, [height, devices]);
  return (
    <>
      <h2>Rollouts</h2>
      {rollouts.state === 'loading' ? <Loading what="the rollouts" /> : null}
      {rollouts.state === 'error' ? (
        <Notice kind="error" title="Could not read the rollouts">
          {explain(rollouts.error, 'reading the chain')}
        </Notice>
      ) : null}
      {rollouts.state === 'ok' && rollouts.value.withWaves.length === 0 ? (
        <Notice kind="empty" title="No rollouts" testId="rollouts-empty">
          No rollout transaction is in the {rollouts.value.truncated ? 'newest blocks read' : 'chain'}.
          Without a rollout, every device follows its target's current version as soon as it is released;
          record a rollout for a group target to release to the group in waves.
        </Notice>
      ) : null}
      {rollouts.state === 'ok'
        ? rollouts.value.withWaves.map(({ r, rows }) => (
            <article
              key={r.rolloutId}
              className="occurrence"
              data-testid="rollout"
              data-rollout={r.rolloutId}
            >
              <h3>
                {r.rolloutId}: <Link to={`/configs/${encodeURIComponent(r.target)}`}>{r.target}</Link> v
                {r.version}{' '}
                <span className="muted">
                  (block <Link to={`/ledger/${r.height}`}>#{r.height}</Link>, halts above{' '}
                  {r.maxFailuresPercent}% failures in a wave)
                </span>
              </h3>
              {r.controls.length === 0 ? null : (
                <p>
                  Controls:{' '}
                  {r.controls.map((c) => (
                    <span key={c.height} className="badge">
                      {c.action} #{c.height}
                    </span>
                  ))}
                </p>
              )}
              <div className="table-wrap">
                <table>
                  <thead>
                    <tr>
                      <th>Wave</th>
                      <th>Buckets</th>
                      <th>Devices</th>
                      <th>Applied v{r.version}</th>
                      <th>Failed</th>
                      <th>Not reported yet</th>
                    </tr>
                  </thead>
                  <tbody>
                    {rows.map((w) => (
                      <tr key={w.wave} data-wave={w.wave}>
                        <td>{w.wave + 1}</td>
                        <td>
                          {w.wave === 0 ? 0 : (r.waves[w.wave - 1] ?? 0)}–{w.upTo - 1}
                        </td>
                        <td>{w.devices}</td>
                        <td className={w.applied > 0 ? 'ok' : ''}>{w.applied}</td>
                        <td className={w.failed > 0 ? 'bad' : ''}>{w.failed}</td>
                        <td>{w.devices - w.applied - w.failed}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <p className="muted">
                Waves and counts are worked out in this browser from the chain and the devices' last reports;
                the ledger's own rollout state (running, halted, done) is not served by the API yet.
              </p>
            </article>
          ))
        : null}
    </>
  );
}
