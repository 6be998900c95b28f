/**
 * Ledger explorer: committed blocks (paged, newest first, new blocks arrive live on the first
 * page), one block's transactions and its commit certificate (which validators signed, checked in
 * the browser), and a search by height, block hash, transaction id or configuration hash.
 */
import { type FormEvent, useEffect, useState } from 'react';
import {
  api,
  type BlockRecord,
  blockRange,
  explain,
  isNotFound,
  scanChain,
  type Tx,
  type Validators,
} from '../api.ts';
import { useLive } from '../live.tsx';
import { ago, Hash, HEX64, Link, Loading, Notice, navigate, time, useLoad, useNow } from '../ui.tsx';
import {
  canonicalHashHex,
  checkCertificateSignatures,
  hasEd25519,
  quorumOf,
  type SignerCheck,
} from '../verify.ts';

const pageSize = 20;

export function LedgerPage({ path, query }: { readonly path: string; readonly query: URLSearchParams }) {
  const match = /^\/ledger\/(\d+)$/.exec(path);
  const q = query.get('q') ?? '';
  return (
    <section>
      <h1>Ledger</h1>
      <SearchBox initial={q} />
      {q !== '' ? <SearchResult q={q} /> : null}
      {match?.[1] !== undefined ? (
        <BlockDetail height={Number(match[1])} />
      ) : (
        <BlockList page={Math.max(0, Number(query.get('page') ?? '0') || 0)} />
      )}
    </section>
  );
}

function SearchBox({ initial }: { readonly initial: string }) {
  const [value, setValue] = useState(initial);
  useEffect(() => setValue(initial), [initial]);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const q = value.trim();
    navigate(q === '' ? '/ledger' : `/ledger?q=${encodeURIComponent(q)}`);
  };
  return (
    <form className="search" onSubmit={submit}>
      <input
        aria-label="Search the ledger"
        placeholder="height, block hash, transaction id or configuration hash"
        value={value}
        onChange={(e) => setValue(e.target.value)}
        data-testid="ledger-search"
      />
      <button type="submit">Search</button>
    </form>
  );
}

type SearchHit =
  | { readonly kind: 'block'; readonly height: number; readonly hash: string }
  | { readonly kind: 'tx'; readonly txId: string; readonly height: number; readonly index: number }
  | {
      readonly kind: 'config';
      readonly height: number;
      readonly type: string;
      readonly target: string;
      readonly version: number;
    };

async function search(q: string): Promise<{ hits: SearchHit[]; note: string | null }> {
  if (/^\d+$/.test(q)) {
    const height = Number(q);
    try {
      const b = await api.block(height);
      return { hits: [{ kind: 'block', height, hash: b.hash }], note: null };
    } catch (err) {
      if (isNotFound(err)) return { hits: [], note: `There is no block at height ${height} yet.` };
      throw err;
    }
  }
  if (!HEX64.test(q)) {
    return {
      hits: [],
      note: 'Enter a height (a number) or a 64-hex-digit block hash, transaction id or configuration hash.',
    };
  }
  const hex = q.toLowerCase();
  const hits: SearchHit[] = [];
  const [block, tx] = await Promise.all([
    api.blockByHash(hex).catch((err: unknown) => (isNotFound(err) ? null : Promise.reject(err))),
    api.tx(hex).catch((err: unknown) => (isNotFound(err) ? null : Promise.reject(err))),
  ]);
  if (block !== null) hits.push({ kind: 'block', height: block.block.header.height, hash: block.hash });
  if (tx !== null) hits.push({ kind: 'tx', txId: tx.txId, height: tx.height, index: tx.index });
  const scan = await scanChain((b) =>
    b.block.txs.flatMap((t): SearchHit[] => {
      const body = t.body as { sha256?: unknown; target?: unknown; version?: unknown };
      if (body.sha256 !== hex) return [];
      return [
        {
          kind: 'config',
          height: b.block.header.height,
          type: t.body.type,
          target: String(body.target ?? ''),
          version: Number(body.version ?? 0),
        },
      ];
    }),
  );
  hits.push(...scan.found);
  const note = scan.truncated
    ? `Configuration hashes were looked up in the newest ${scan.scanned} blocks only.`
    : null;
  return { hits, note };
}

function SearchResult({ q }: { readonly q: string }) {
  const result = useLoad(() => search(q.trim()), [q]);
  if (result.state === 'loading') return <Loading what={`results for ${q}`} />;
  if (result.state === 'error') {
    return (
      <Notice kind="error" title="The search failed">
        {explain(result.error, 'the search')}
      </Notice>
    );
  }
  const { hits, note } = result.value;
  return (
    <div data-testid="search-result">
      {hits.length === 0 ? (
        <Notice kind="empty" title={`Nothing on the ledger matches ${q}`} testId="search-empty">
          {note ?? 'No block, transaction or configuration has this hash. Check that it was copied whole.'}
        </Notice>
      ) : (
        <ul className="hits">
          {hits.map((h) => (
            <li key={`${h.kind}-${h.height}-${'txId' in h ? h.txId : ''}-${'type' in h ? h.type : ''}`}>
              {h.kind === 'block' ? (
                <>
                  Block <Link to={`/ledger/${h.height}`}>#{h.height}</Link> <Hash value={h.hash} />
                </>
              ) : null}
              {h.kind === 'tx' ? (
                <>
                  Transaction {h.index} of block <Link to={`/ledger/${h.height}`}>#{h.height}</Link>
                </>
              ) : null}
              {h.kind === 'config' ? (
                <>
                  Configuration: {h.type} of{' '}
                  <Link to={`/configs/${encodeURIComponent(h.target)}`}>{h.target}</Link> version {h.version}{' '}
                  in block <Link to={`/ledger/${h.height}`}>#{h.height}</Link>
                </>
              ) : null}
            </li>
          ))}
          {note === null ? null : <li className="muted">{note}</li>}
        </ul>
      )}
    </div>
  );
}

function BlockList({ page }: { readonly page: number }) {
  const live = useLive();
  const now = useNow();
  const tip = live.status?.height;
  // The first page follows the tip; older pages stay put while blocks arrive.
  const top = tip === undefined ? undefined : tip - page * pageSize;
  const liveKey = page === 0 ? tip : undefined;
  const blocks = useLoad(async () => {
    if (top === undefined || top < 0) return [];
    const from = Math.max(0, top - pageSize + 1);
    return (await blockRange(from, top - from + 1)).blocks.reverse();
  }, [top === undefined, page, liveKey]);

  if (tip === undefined) {
    return live.error === null ? (
      <Loading what="the chain" />
    ) : (
      <Notice kind="error" title="No chain to show">
        {live.error}
      </Notice>
    );
  }
  return (
    <>
      <h2>Blocks</h2>
      {blocks.state === 'error' ? (
        <Notice kind="error" title="Could not read blocks">
          {explain(blocks.error, 'GET /v1/blocks')}
        </Notice>
      ) : null}
      {blocks.state === 'loading' ? <Loading what="blocks" /> : null}
      {blocks.state === 'ok' && blocks.value.length === 0 ? (
        <Notice kind="empty" title="No blocks on this page">
          <Link to="/ledger">Back to the newest blocks</Link>
        </Notice>
      ) : null}
      {blocks.state === 'ok' && blocks.value.length > 0 ? (
        <div className="table-wrap">
          <table data-testid="blocks">
            <thead>
              <tr>
                <th>Height</th>
                <th>Hash</th>
                <th>Time</th>
                <th>Txs</th>
                <th>Proposer</th>
                <th>Signers</th>
              </tr>
            </thead>
            <tbody>
              {blocks.value.map((b) => (
                <tr key={b.block.header.height} data-height={b.block.header.height}>
                  <td>
                    <Link to={`/ledger/${b.block.header.height}`}>#{b.block.header.height}</Link>
                  </td>
                  <td>
                    <Hash value={b.hash} />
                  </td>
                  <td title={time(b.block.header.timestampMs)}>{ago(b.block.header.timestampMs, now)}</td>
                  <td>{b.block.txs.length}</td>
                  <td>{b.block.header.height === 0 ? 'genesis' : b.block.header.proposer}</td>
                  <td>{b.certificate?.signatures.map((s) => s.validator).join(', ') ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <nav className="pager">
        {page > 0 ? <Link to={page === 1 ? '/ledger' : `/ledger?page=${page - 1}`}>← newer</Link> : <span />}
        <span className="muted">
          tip #{tip} · page {page + 1} of {Math.floor(tip / pageSize) + 1}
        </span>
        {(page + 1) * pageSize <= tip ? <Link to={`/ledger?page=${page + 1}`}>older →</Link> : <span />}
      </nav>
    </>
  );
}

function txSummary(tx: Tx): string {
  const b = tx.body as Record<string, unknown>;
  switch (b.type) {
    case 'release':
    case 'attest':
      return `${String(b.target)} v${String(b.version)}`;
    case 'device-enroll':
      return `${String(b.deviceId)} → ${String(b.target)} (group ${String(b.group)})`;
    case 'device-revoke':
      return `${String(b.deviceId)}: ${String(b.reason)}`;
    case 'device-report':
      return `${String(b.deviceId)} ${String(b.status)} ${String(b.target)} v${String(b.version)}`;
    case 'heartbeat':
      return `validator ${String(b.submitter)} is alive`;
    case 'rollout':
      return `${String(b.rolloutId)}: ${String(b.target)} v${String(b.version)} in waves ${JSON.stringify(b.waves)}`;
    case 'rollout-control':
      return `${String(b.rolloutId)}: ${String(b.action)}`;
    default:
      return '';
  }
}

function BlockDetail({ height }: { readonly height: number }) {
  const block = useLoad(() => api.block(height), [height]);
  const validators = useLoad(() => api.validators(), []);
  if (block.state === 'loading') return <Loading what={`block #${height}`} />;
  if (block.state === 'error') {
    return (
      <Notice kind={isNotFound(block.error) ? 'empty' : 'error'} title={`No block #${height}`}>
        {isNotFound(block.error)
          ? 'This height is not committed yet. The list of blocks shows the tip.'
          : explain(block.error, `GET /v1/blocks/${height}`)}{' '}
        <Link to="/ledger">Back to the blocks</Link>
      </Notice>
    );
  }
  const b = block.value;
  const h = b.block.header;
  return (
    <div data-testid="block-detail">
      <h2>
        Block #{h.height} <Link to="/ledger">(all blocks)</Link>
      </h2>
      <dl className="fields">
        <dt>Hash</dt>
        <dd>
          <Hash value={b.hash} full />
        </dd>
        <dt>Previous</dt>
        <dd>
          {h.height > 0 ? <Link to={`/ledger/${h.height - 1}`}>#{h.height - 1}</Link> : 'genesis document'}{' '}
          <Hash value={h.prevHash} />
        </dd>
        <dt>Time</dt>
        <dd>{time(h.timestampMs)}</dd>
        <dt>View / proposer</dt>
        <dd>
          view {h.view}, validator {h.proposer}
        </dd>
        <dt>Transaction root</dt>
        <dd>
          <Hash value={h.txRoot} full />
        </dd>
        <dt>State root</dt>
        <dd>
          <Hash value={h.stateRoot} full />
        </dd>
      </dl>
      <h3>Transactions ({b.block.txs.length})</h3>
      {b.block.txs.length === 0 ? (
        <Notice kind="empty" title="No transactions">
          {h.height === 0
            ? 'The genesis block holds none.'
            : 'An empty block (proposed during a view change).'}
        </Notice>
      ) : (
        <TxTable txs={b.block.txs} />
      )}
      <h3>Commit certificate</h3>
      {b.certificate === null ? (
        <Notice kind="empty" title="No certificate">
          The genesis block is anchored by the genesis document, not by signatures.
        </Notice>
      ) : (
        <CertificateView record={b} validators={validators.state === 'ok' ? validators.value : null} />
      )}
    </div>
  );
}

function TxTable({ txs }: { readonly txs: readonly Tx[] }) {
  const ids = useLoad(() => Promise.all(txs.map((t) => canonicalHashHex(t))), [txs]);
  return (
    <div className="table-wrap">
      <table data-testid="txs">
        <thead>
          <tr>
            <th>#</th>
            <th>Type</th>
            <th>What</th>
            <th>Config hash</th>
            <th>Transaction id</th>
            <th>Signed by</th>
          </tr>
        </thead>
        <tbody>
          {txs.map((t, i) => {
            const sha = (t.body as { sha256?: unknown }).sha256;
            const id = ids.state === 'ok' ? ids.value[i] : undefined;
            return (
              // An attest is unsigned; within a block its target's hash tells it apart.
              <tr
                key={`${t.body.type}:${typeof sha === 'string' ? sha : ''}:${t.signatures.map((sig) => sig.signature).join('')}`}
              >
                <td>{i}</td>
                <td>{t.body.type}</td>
                <td>{txSummary(t)}</td>
                <td>{typeof sha === 'string' ? <Hash value={sha} /> : '—'}</td>
                <td>{id === undefined ? '…' : <Hash value={id} />}</td>
                <td>
                  {t.signatures.length === 0
                    ? 'unsigned: the certificate vouches'
                    : t.signatures.map((s) => s.signer).join(', ')}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function CertificateView({
  record,
  validators,
}: {
  readonly record: BlockRecord;
  readonly validators: Validators | null;
}) {
  const cert = record.certificate;
  const [checks, setChecks] = useState<SignerCheck[] | 'unsupported' | null>(null);
  const headerHash = useLoad(() => canonicalHashHex(record.block.header), [record]);
  useEffect(() => {
    if (cert === null || validators === null) return;
    let current = true;
    void (async () => {
      if (!(await hasEd25519())) {
        if (current) setChecks('unsupported');
        return;
      }
      const keys = new Map(validators.validators.map((v) => [v.id, v.publicKey]));
      const result = await checkCertificateSignatures(record.block.header.chainId, cert, keys);
      if (current) setChecks(result);
    })();
    return () => {
      current = false;
    };
  }, [cert, validators, record]);
  if (cert === null) return null;
  const n = validators?.validators.length;
  const signs =
    headerHash.state === 'ok' && headerHash.value === record.hash && cert.blockHash === record.hash;
  return (
    <div data-testid="certificate">
      <p>
        View {cert.view}, {cert.signatures.length} signatures
        {n === undefined ? '' : ` (a quorum is ${quorumOf(n)} of ${n})`}.{' '}
        {headerHash.state === 'ok' ? (
          <span
            className={signs ? 'ok' : 'bad'}
            data-testid="certificate-block"
            data-state={signs ? 'pass' : 'fail'}
          >
            {signs
              ? 'The header hashes to the block hash the certificate signs.'
              : 'The header does NOT hash to the block hash the certificate signs.'}
          </span>
        ) : null}
      </p>
      <ul className="signers">
        {cert.signatures.map((s) => {
          const check = Array.isArray(checks) ? checks.find((c) => c.validator === s.validator) : undefined;
          return (
            <li key={s.validator}>
              validator {s.validator}{' '}
              {check === undefined ? (
                <span className="muted">{checks === 'unsupported' ? 'not checked' : 'checking…'}</span>
              ) : (
                <span className={check.ok ? 'ok' : 'bad'}>
                  {check.ok ? 'signature valid' : 'signature INVALID'}
                </span>
              )}
            </li>
          );
        })}
      </ul>
      {checks === 'unsupported' ? (
        <p className="muted">
          This browser has no WebCrypto Ed25519, so the signatures were not checked here.
        </p>
      ) : (
        <p className="muted">
          Signatures are checked in this browser with WebCrypto Ed25519 against the keys from /v1/validators.
        </p>
      )}
    </div>
  );
}
