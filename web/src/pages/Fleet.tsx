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
import { Link, Loading, Notice, useLoad } from '../ui.tsx';

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
      <h2>Rollouts</h2>
      <Notice kind="empty" title="No rollouts" testId="rollouts-empty">
        This validator's API has no rollout waves to show. Each device follows its target's current version;
        release a new version to roll it out, and watch the column “Against current” move to compliant.
      </Notice>
    </section>
  );
}
