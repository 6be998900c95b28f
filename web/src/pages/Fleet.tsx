/**
 * Fleet: the devices of the registry (GET /v1/devices, paged by cursor), enrolled or revoked,
 * their last report, and whether they run their target's current version: compliant (applied the
 * current version), behind (an older one, or no report yet) or failed (the last report failed or
 * did not match: "applied" with bytes other than the release's). Filters by target and by group.
 * Below, the staged rollouts with the ledger's own status and per-wave counts (GET /v1/rollouts).
 */
import { useMemo, useState } from 'react';
import { devicesPageMax } from '../../../src/constants.ts';
import { api, explain, isNotFound, type Rollout, type TargetEntry } from '../api.ts';
import { useLive } from '../live.tsx';
import { Hash, Link, Loading, Notice, useLoad } from '../ui.tsx';

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
  // Applied the current version number but other bytes: the ledger counts that as a failure too.
  if (r.version === target.version) return 'failed';
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
                              v{d.lastReport.version} {d.lastReport.status}
                              {c === 'failed' && d.lastReport.status === 'applied' ? ' (other bytes)' : ''} in{' '}
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
      <Rollouts height={height} />
    </section>
  );
}

/** Rollouts the page reads at most: the newest ones, as GET /v1/rollouts orders them. */
const rolloutsShownMax = 20;

const statusClass: Record<Rollout['status'], string> = {
  running: 'warn',
  done: 'ok',
  halted: 'bad',
  aborted: 'bad',
};

/**
 * Staged rollouts as the ledger keeps them (GET /v1/rollouts): status, why, the newest open wave,
 * and per wave the enrolled devices and the reports the ledger counted as successes (applied with
 * the release's exact sha256) or failures. Nothing is recounted here: a browser that counted the
 * devices' reports itself would disagree with the ledger (an "applied" report of other bytes is a
 * failure there) and with every device that decides its wave on the proved entry.
 */
function Rollouts({ height }: { readonly height: number }) {
  const rollouts = useLoad(() => api.rollouts(rolloutsShownMax), [height]);
  return (
    <>
      <h2>Rollouts</h2>
      {rollouts.state === 'loading' ? <Loading what="the rollouts" /> : null}
      {rollouts.state === 'error' ? (
        <Notice kind="error" title="Could not read the rollouts">
          {explain(rollouts.error, 'GET /v1/rollouts')}
        </Notice>
      ) : null}
      {rollouts.state === 'ok' && rollouts.value.length === 0 ? (
        <Notice kind="empty" title="No rollouts" testId="rollouts-empty">
          The ledger holds no staged rollout. Without one, every device follows its target's current version
          as soon as it is released; record a rollout for a group target (configchain rollout) to release to
          the group in waves.
        </Notice>
      ) : null}
      {rollouts.state === 'ok' ? rollouts.value.map((r) => <RolloutCard key={r.rolloutId} r={r} />) : null}
      {rollouts.state === 'ok' && rollouts.value.length === rolloutsShownMax ? (
        <p className="muted">Only the newest {rolloutsShownMax} rollouts are shown.</p>
      ) : null}
    </>
  );
}

function RolloutCard({ r }: { readonly r: Rollout }) {
  return (
    <article
      className="occurrence"
      data-testid="rollout"
      data-rollout={r.rolloutId}
      data-status={r.status}
      data-current-wave={r.currentWave}
    >
      <h3>
        {r.rolloutId}: <Link to={`/configs/${encodeURIComponent(r.target)}`}>{r.target}</Link> v{r.version}{' '}
        <span className="muted">
          (block <Link to={`/ledger/${r.createdAt}`}>#{r.createdAt}</Link>, halts above {r.maxFailuresPercent}
          % failures in a wave)
        </span>
      </h3>
      <p>
        <span className={statusClass[r.status]} data-testid="rollout-status">
          {r.status}
          {r.rollback ? ' (rolled back)' : ''}
        </span>
        {r.reason === '' ? null : (
          <>
            {': '}
            <span data-testid="rollout-reason">{r.reason}</span>
          </>
        )}
        <span className="muted">
          {' '}
          · wave {r.currentWave + 1} of {r.waves.length} open
          {r.controlSeq === 0 ? '' : ` · ${r.controlSeq} operator control${r.controlSeq === 1 ? '' : 's'}`}
        </span>
      </p>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Wave</th>
              <th>Buckets</th>
              <th>Devices</th>
              <th>Succeeded</th>
              <th>Failed</th>
              <th>Not counted yet</th>
              <th>Open</th>
            </tr>
          </thead>
          <tbody>
            {r.progress.map((w, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: a wave is its position in the rollout
              <tr key={i} data-wave={i}>
                <td>{i + 1}</td>
                <td>
                  {i === 0 ? 0 : (r.waves[i - 1] ?? 0)}–{(r.waves[i] ?? 100) - 1}
                </td>
                <td>{w.devices}</td>
                <td className={w.successes > 0 ? 'ok' : ''}>{w.successes}</td>
                <td className={w.failures > 0 ? 'bad' : ''}>{w.failures}</td>
                <td>{w.devices - w.successes - w.failures}</td>
                <td>{i <= r.currentWave ? 'yes' : 'no'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p className="muted">
        Status and counts are the ledger's (rollout/{r.rolloutId}): a report counts as a success only when it
        applied exactly the release's sha256 (<Hash value={r.sha256} />
        ), and each device counts once, by its latest report on v{r.version}.
      </p>
    </article>
  );
}
