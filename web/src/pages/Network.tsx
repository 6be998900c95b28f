/**
 * Network: the validators, the primary, view, height, the last block's time, which peer links are
 * up, and a chart of blocks/s and transactions/s. This validator's own status comes live from the
 * event stream; the others are asked for their /v1/status every two seconds, so a validator that
 * stops answering shows as down within seconds.
 */
import { useEffect, useState } from 'react';
import { api, explain, remoteStatus, type Status, type Validators } from '../api.ts';
import { type Bucket, bucketMs, useLive } from '../live.tsx';
import { ago, Hash, Loading, Notice, time, useLoad, useNow } from '../ui.tsx';

const peerPollMs = 2000;

type Remote = { readonly status: Status | null; readonly askedMs: number };

function useRemoteStatuses(validators: Validators['validators'] | undefined, selfId: number | undefined) {
  const [remote, setRemote] = useState<ReadonlyMap<number, Remote>>(new Map());
  useEffect(() => {
    if (validators === undefined) return;
    let stopped = false;
    const ask = async () => {
      const answers = await Promise.all(
        validators
          .filter((v) => v.id !== selfId)
          .map(async (v) => [v.id, { status: await remoteStatus(v.apiUrl), askedMs: Date.now() }] as const),
      );
      if (!stopped) setRemote(new Map(answers));
    };
    void ask();
    const timer = setInterval(() => void ask(), peerPollMs);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [validators, selfId]);
  return remote;
}

export function NetworkPage() {
  const live = useLive();
  const now = useNow();
  const validators = useLoad(() => api.validators(), []);
  const list = validators.state === 'ok' ? validators.value.validators : undefined;
  const remote = useRemoteStatuses(list, live.status?.id);
  const status = live.status;

  if (status === null) {
    if (live.error !== null) {
      return (
        <Notice kind="error" title="No status from this validator">
          {live.error}
        </Notice>
      );
    }
    return <Loading what="the network status" />;
  }
  const lastBlock = live.blocks[0];
  const statusOf = (id: number): Status | null =>
    id === status.id ? status : (remote.get(id)?.status ?? null);

  return (
    <section>
      <h1>Network</h1>
      <div className="cards">
        <Card label="Height" value={String(status.height)} testId="net-height" />
        <Card label="View" value={String(status.view)} />
        <Card label="Primary" value={`validator ${status.primary}`} testId="net-primary" />
        <Card
          label="Last block"
          value={lastBlock === undefined ? '—' : ago(lastBlock.timestampMs, now)}
          detail={lastBlock === undefined ? undefined : time(lastBlock.timestampMs)}
        />
        <Card label="Pending transactions" value={String(status.pendingTxs)} />
        <Card
          label="Updates"
          value={live.connection === 'live' ? 'live (events)' : live.connection}
          detail={
            live.connection === 'polling' ? 'the event stream is unavailable; polling every 2 s' : undefined
          }
        />
      </div>
      {status.viewChanging ? (
        <Notice kind="info" title="A view change is in progress">
          The validators are electing a new primary; new blocks resume when it completes.
        </Notice>
      ) : null}

      <h2>Validators</h2>
      {validators.state === 'loading' ? <Loading what="the validators" /> : null}
      {validators.state === 'error' ? (
        <Notice kind="error" title="Could not list the validators">
          {explain(validators.error, 'GET /v1/validators')}
        </Notice>
      ) : null}
      {list === undefined ? null : (
        <div className="table-wrap">
          <table data-testid="validators">
            <thead>
              <tr>
                <th>Validator</th>
                <th>State</th>
                <th>View</th>
                <th>Height</th>
                <th>Link from {status.id}</th>
                <th>API</th>
              </tr>
            </thead>
            <tbody>
              {list.map((v) => {
                const s = statusOf(v.id);
                const peer = status.peers.find((p) => p.id === v.id);
                const linkUp = v.id === status.id ? null : (peer?.connected ?? false);
                const up = s !== null;
                return (
                  <tr key={v.id} data-testid={`validator-${v.id}`} data-state={up ? 'up' : 'down'}>
                    <td>
                      {v.id}
                      {v.id === status.id ? <span className="badge">this page</span> : null}
                      {v.id === status.primary ? <span className="badge badge-primary">primary</span> : null}
                    </td>
                    <td>
                      <span className={up ? 'ok' : 'bad'}>{up ? 'up' : 'down'}</span>
                      {up ? null : <div className="muted">does not answer; check its process and log</div>}
                    </td>
                    <td>{s?.view ?? peer?.view ?? '—'}</td>
                    <td>{s?.height ?? peer?.height ?? '—'}</td>
                    <td>
                      {linkUp === null ? (
                        '—'
                      ) : (
                        <span className={linkUp ? 'ok' : 'bad'}>{linkUp ? 'up' : 'down'}</span>
                      )}
                    </td>
                    <td>
                      <code>{v.apiUrl}</code>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}

      {list === undefined ? null : <LinkMatrix ids={list.map((v) => v.id)} statusOf={statusOf} />}

      <h2>Throughput</h2>
      <Chart buckets={live.buckets} nowMs={now} />
      <p className="muted">
        Chain <Hash value={status.chainId} full /> · tip <Hash value={status.tipHash} />
      </p>
    </section>
  );
}

function Card({
  label,
  value,
  detail,
  testId,
}: {
  readonly label: string;
  readonly value: string;
  readonly detail?: string | undefined;
  readonly testId?: string;
}) {
  return (
    <div className="card">
      <div className="card-label">{label}</div>
      <div className="card-value" data-testid={testId}>
        {value}
      </div>
      {detail === undefined ? null : <div className="muted">{detail}</div>}
    </div>
  );
}

/** Peer links as each validator reports them: row = the reporting validator. */
function LinkMatrix({
  ids,
  statusOf,
}: {
  readonly ids: readonly number[];
  readonly statusOf: (id: number) => Status | null;
}) {
  return (
    <>
      <h3>Peer links (as each validator reports them)</h3>
      <div className="table-wrap">
        <table className="matrix" data-testid="links">
          <thead>
            <tr>
              <th>from \ to</th>
              {ids.map((id) => (
                <th key={id}>{id}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {ids.map((from) => {
              const s = statusOf(from);
              return (
                <tr key={from}>
                  <th>{from}</th>
                  {ids.map((to) => {
                    if (to === from) return <td key={to}>·</td>;
                    if (s === null) {
                      return (
                        <td key={to} className="muted" title="this validator does not answer">
                          ?
                        </td>
                      );
                    }
                    const up = s.peers.find((p) => p.id === to)?.connected ?? false;
                    return (
                      <td key={to} className={up ? 'ok' : 'bad'}>
                        {up ? 'up' : 'down'}
                      </td>
                    );
                  })}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </>
  );
}

const chartBuckets = 60;

/** Blocks/s and transactions/s over the last five minutes, in 5 s buckets, as plain SVG. */
export function Chart({ buckets, nowMs }: { readonly buckets: readonly Bucket[]; readonly nowMs: number }) {
  const end = Math.floor(nowMs / bucketMs) * bucketMs;
  const starts = Array.from({ length: chartBuckets }, (_, i) => end - (chartBuckets - 1 - i) * bucketMs);
  const byStart = new Map(buckets.map((b) => [b.startMs, b]));
  const series = starts.map((s) => byStart.get(s) ?? { startMs: s, blocks: 0, txs: 0 });
  const perSecond = (n: number) => n / (bucketMs / 1000);
  const blocks = series.map((b) => perSecond(b.blocks));
  const txs = series.map((b) => perSecond(b.txs));
  const max = Math.max(1, ...blocks, ...txs);
  const width = 600;
  const height = 160;
  const x = (i: number) => (i / (chartBuckets - 1)) * width;
  const y = (v: number) => height - (v / max) * (height - 10);
  const line = (values: readonly number[]) =>
    values.map((v, i) => `${i === 0 ? 'M' : 'L'}${x(i)},${y(v)}`).join(' ');
  const total = series.reduce((n, b) => n + b.txs, 0);
  if (buckets.length === 0) {
    return (
      <Notice kind="empty" title="No blocks in the last minutes">
        The chart fills as blocks commit. Validate a configuration hash (POST /validateHash) or release a
        version to see activity.
      </Notice>
    );
  }
  return (
    <figure className="chart" data-testid="chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        preserveAspectRatio="none"
        role="img"
        aria-label="blocks and transactions per second"
      >
        <line x1="0" y1={height} x2={width} y2={height} className="axis" />
        <path d={line(blocks)} className="series-blocks" />
        <path d={line(txs)} className="series-txs" />
      </svg>
      <figcaption>
        <span className="key key-blocks">blocks/s</span> <span className="key key-txs">tx/s</span> · last 5
        min, 5 s buckets · peak {max.toFixed(1)}/s · {total} transactions
      </figcaption>
    </figure>
  );
}
