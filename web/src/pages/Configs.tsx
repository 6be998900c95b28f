/**
 * Configurations: the targets, each one's current release and full history, which validators hold
 * a copy of each version (HEAD /v1/content/:sha256 on every validator), the device reports about
 * it, and a side-by-side diff of any two versions' contents.
 */
import { useEffect, useMemo, useState } from 'react';
import {
  api,
  explain,
  holdsContent,
  isNotFound,
  knownTargets,
  type TargetHistory,
  type Validators,
  versionText,
} from '../api.ts';
import { type DiffRow, sideBySide } from '../diff.ts';
import { useLive } from '../live.tsx';
import { Hash, Link, Loading, Notice, useLoad } from '../ui.tsx';

export function ConfigsPage({ path }: { readonly path: string }) {
  const match = /^\/configs\/(.+)$/.exec(path);
  const target = match?.[1] === undefined ? undefined : decodeURIComponent(match[1]);
  return (
    <section>
      <h1>Configurations</h1>
      {target === undefined ? <TargetList /> : <TargetDetail target={target} />}
    </section>
  );
}

function TargetList() {
  const live = useLive();
  const height = live.status?.height ?? -1;
  const targets = useLoad(async () => {
    const scan = await knownTargets();
    const entries = await Promise.all(
      scan.found.map(async (t) => {
        try {
          return { target: t, entry: await api.target(t) };
        } catch (err) {
          if (isNotFound(err)) return { target: t, entry: null };
          throw err;
        }
      }),
    );
    return { scan, entries };
  }, [height]);
  if (targets.state === 'loading') return <Loading what="the targets" />;
  if (targets.state === 'error') {
    return (
      <Notice kind="error" title="Could not list the targets">
        {explain(targets.error, 'the target list')}
      </Notice>
    );
  }
  const { scan, entries } = targets.value;
  return (
    <>
      <div className="table-wrap">
        <table data-testid="targets">
          <thead>
            <tr>
              <th>Target</th>
              <th>Current version</th>
              <th>Hash</th>
              <th>Source</th>
              <th>Since block</th>
            </tr>
          </thead>
          <tbody>
            {entries.map(({ target, entry }) => (
              <tr key={target} data-target={target}>
                <td>
                  <Link to={`/configs/${encodeURIComponent(target)}`}>{target}</Link>
                </td>
                {entry === null ? (
                  <td colSpan={4} className="muted">
                    no configuration on the ledger yet: release one (configchain publish) or validate a hash
                  </td>
                ) : (
                  <>
                    <td>v{entry.version}</td>
                    <td>
                      <Hash value={entry.sha256} />
                    </td>
                    <td>{entry.source}</td>
                    <td>
                      <Link to={`/ledger/${entry.height}`}>#{entry.height}</Link>
                    </td>
                  </>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p className="muted">
        Targets named by transactions in the newest {scan.scanned} blocks
        {scan.truncated ? ' (older blocks were not read)' : ''}.
      </p>
    </>
  );
}

type Entry = TargetHistory['entries'][number];

function TargetDetail({ target }: { readonly target: string }) {
  const live = useLive();
  const height = live.status?.height ?? -1;
  const history = useLoad(() => api.targetHistory(target), [target, height]);
  const validators = useLoad(() => api.validators(), []);
  if (history.state === 'loading') return <Loading what={`the history of ${target}`} />;
  if (history.state === 'error') {
    return (
      <Notice kind={isNotFound(history.error) ? 'empty' : 'error'} title={`No history for ${target}`}>
        {isNotFound(history.error)
          ? 'This target has no configuration on the ledger yet. Release a version (configchain publish) or validate a hash for it.'
          : explain(history.error, `GET /v1/targets/${target}/history`)}{' '}
        <Link to="/configs">All targets</Link>
      </Notice>
    );
  }
  const entries = history.value.entries;
  const reports = (history.value as { reports?: TargetHistory['reports'] }).reports ?? [];
  const current = entries[0];
  return (
    <div data-testid="target-detail">
      <h2>
        {target} <Link to="/configs">(all targets)</Link>
      </h2>
      {current === undefined ? (
        <Notice kind="empty" title="No versions yet">
          Release a version (configchain publish) or validate a hash for this target.
        </Notice>
      ) : (
        <p>
          Current: <strong data-testid="current-version">v{current.version}</strong>{' '}
          <Hash value={current.sha256} /> ({current.size} bytes, {current.mediaType}, {current.source} in
          block <Link to={`/ledger/${current.height}`}>#{current.height}</Link>)
        </p>
      )}
      <h3>History</h3>
      <HistoryTable entries={entries} validators={validators.state === 'ok' ? validators.value : null} />
      {entries.length >= 2 ? <DiffView entries={entries} /> : null}
      <h3>Device reports</h3>
      {reports.length === 0 ? (
        <Notice kind="empty" title="No device has reported on this target">
          Devices report what they applied with configchain device (or the device agent); reports show here.
        </Notice>
      ) : (
        <div className="table-wrap">
          <table data-testid="reports">
            <thead>
              <tr>
                <th>Device</th>
                <th>Version</th>
                <th>Status</th>
                <th>Detail</th>
                <th>Block</th>
              </tr>
            </thead>
            <tbody>
              {reports.map((r) => (
                <tr key={`${r.deviceId}-${r.seq}`}>
                  <td>{r.deviceId}</td>
                  <td>v{r.version}</td>
                  <td className={r.status === 'applied' ? 'ok' : 'bad'}>{r.status}</td>
                  <td>{r.detail}</td>
                  <td>
                    <Link to={`/ledger/${r.height}`}>#{r.height}</Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

/** Versions whose copies are looked for on every validator (the newest ones). */
const holdersVersionsMax = 20;

/** Which validators hold a copy of each recent version, asked once per (version, validator). */
function useHolders(allEntries: readonly Entry[], validators: Validators | null) {
  const [holders, setHolders] = useState<ReadonlyMap<string, ReadonlyMap<number, boolean | null>>>(new Map());
  // One string, so a new history answer with the same versions asks nobody again.
  const key = allEntries
    .slice(0, holdersVersionsMax)
    .map((e) => e.sha256)
    .join(',');
  useEffect(() => {
    if (validators === null || key === '') return;
    let current = true;
    void (async () => {
      const result = new Map<string, Map<number, boolean | null>>();
      await Promise.all(
        key.split(',').map(async (sha256) => {
          const row = new Map<number, boolean | null>();
          await Promise.all(
            validators.validators.map(async (v) => row.set(v.id, await holdsContent(v.apiUrl, sha256))),
          );
          result.set(sha256, row);
        }),
      );
      if (current) setHolders(result);
    })();
    return () => {
      current = false;
    };
  }, [key, validators]);
  return holders;
}

function HistoryTable({
  entries,
  validators,
}: {
  readonly entries: readonly Entry[];
  readonly validators: Validators | null;
}) {
  const holders = useHolders(entries, validators);
  return (
    <div className="table-wrap">
      <table data-testid="history">
        <thead>
          <tr>
            <th>Version</th>
            <th>Hash</th>
            <th>Size</th>
            <th>Source</th>
            <th>Block</th>
            <th>Copies held by</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((e) => {
            const row = holders.get(e.sha256);
            const held =
              row === undefined
                ? null
                : [...row]
                    .filter(([, h]) => h === true)
                    .map(([id]) => id)
                    .sort((x, y) => x - y);
            const unknown =
              row === undefined
                ? []
                : [...row]
                    .filter(([, h]) => h === null)
                    .map(([id]) => id)
                    .sort((x, y) => x - y);
            return (
              <tr key={`${e.version}-${e.txId}`} data-version={e.version}>
                <td>v{e.version}</td>
                <td>
                  <Hash value={e.sha256} />
                </td>
                <td>{e.size}</td>
                <td>{e.source}</td>
                <td>
                  <Link to={`/ledger/${e.height}`}>#{e.height}</Link>
                </td>
                <td data-testid={`holders-${e.version}`}>
                  {held === null
                    ? row === undefined && holders.size > 0
                      ? 'not asked (older version)'
                      : 'asking…'
                    : held.length === 0
                      ? 'none (attested hashes have no copy; releases do)'
                      : `validators ${held.join(', ')}`}
                  {unknown.length > 0 ? (
                    <span className="muted"> · {unknown.join(', ')} did not answer</span>
                  ) : null}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function DiffView({ entries }: { readonly entries: readonly Entry[] }) {
  const [left, setLeft] = useState(entries[1]?.version ?? 0);
  const [right, setRight] = useState(entries[0]?.version ?? 0);
  const a = entries.find((e) => e.version === left);
  const b = entries.find((e) => e.version === right);
  const texts = useLoad(async () => {
    if (a === undefined || b === undefined) return null;
    const [ta, tb] = await Promise.all([versionText(a), versionText(b)]);
    return { ta, tb };
  }, [a?.sha256, b?.sha256]);
  const rows = useMemo(() => {
    if (texts.state !== 'ok' || texts.value === null) return null;
    const { ta, tb } = texts.value;
    if (ta === undefined || tb === undefined) return null;
    return sideBySide(ta.text, tb.text);
  }, [texts]);
  const picker = (value: number, set: (v: number) => void, label: string) => (
    <label>
      {label}{' '}
      <select value={value} onChange={(e) => set(Number(e.target.value))} data-testid={`diff-${label}`}>
        {entries.map((e) => (
          <option key={`${e.version}-${e.txId}`} value={e.version}>
            v{e.version}
          </option>
        ))}
      </select>
    </label>
  );
  let body: React.ReactNode = null;
  if (texts.state === 'loading') body = <Loading what="the two versions" />;
  else if (texts.state === 'error') {
    body = (
      <Notice kind="error" title="Could not read the contents">
        {explain(texts.error, 'GET /v1/content')}
      </Notice>
    );
  } else if (texts.value !== null && (texts.value.ta === undefined || texts.value.tb === undefined)) {
    const missing = [texts.value.ta === undefined ? left : null, texts.value.tb === undefined ? right : null]
      .filter((v) => v !== null)
      .map((v) => `v${v}`)
      .join(' and ');
    body = (
      <Notice kind="empty" title={`This validator holds no copy of ${missing}`} testId="diff-missing">
        Validators keep copies of released content (up to the genesis policy's contentCopyBytesMax); a hash
        that was only attested has none. Pick released versions, or open the dashboard of a validator that
        holds them.
      </Notice>
    );
  } else if (typeof rows === 'string') {
    body = (
      <Notice kind="info" title="Too long to compare here">
        {rows}
      </Notice>
    );
  } else if (rows !== null) {
    const from = (t: { from: string } | undefined) =>
      t?.from === 'copy' ? "this validator's copy" : 'the release transaction (inline content)';
    body = (
      <>
        <p className="muted">
          v{left} from {from(texts.value?.ta)}, v{right} from {from(texts.value?.tb)}; both hashed to their
          released sha256.
        </p>
        <DiffTable rows={rows} left={left} right={right} />
      </>
    );
  }
  return (
    <>
      <h3>Compare versions</h3>
      <div className="diff-pickers">
        {picker(left, setLeft, 'left')}
        {picker(right, setRight, 'right')}
      </div>
      {body}
    </>
  );
}

function DiffTable({
  rows,
  left,
  right,
}: {
  readonly rows: readonly DiffRow[];
  readonly left: number;
  readonly right: number;
}) {
  const changed = rows.filter((r) => r.kind !== 'same').length;
  return (
    <div className="table-wrap">
      <p className="muted" data-testid="diff-summary">
        v{left} → v{right}: {changed === 0 ? 'identical' : `${changed} changed lines`}
      </p>
      <table className="diff" data-testid="diff">
        <colgroup>
          <col className="ln" />
          <col />
          <col className="ln" />
          <col />
        </colgroup>
        <thead>
          <tr>
            <th colSpan={2}>v{left}</th>
            <th colSpan={2}>v{right}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={`${'l' in r ? r.l : '-'}:${'r' in r ? r.r : '-'}`} className={`diff-${r.kind}`}>
              <td className="ln">{'l' in r ? r.l : ''}</td>
              <td className="code left">{'left' in r ? r.left : ''}</td>
              <td className="ln">{'r' in r ? r.r : ''}</td>
              <td className="code right">{'right' in r ? r.right : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
