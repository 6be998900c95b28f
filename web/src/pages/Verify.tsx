/**
 * Verify: paste a configuration hash, or drop a file that the browser hashes (WebCrypto SHA-256,
 * nothing is uploaded), and see whether and where the hash is on the ledger. For each transaction
 * that names it, the page fetches GET /v1/tx/:id/proof and checks it here: the transaction id,
 * its RFC 9162 inclusion in the header's txRoot, that the commit certificate is for that header,
 * and the certificate's Ed25519 signatures against a quorum.
 */
import { type DragEvent, type FormEvent, useState } from 'react';
import { ApiRequestError } from '../../../src/api/client.ts';
import { api, explain, isNotFound, scanChain } from '../api.ts';
import { Hash, HEX64, Link, Loading, Notice, navigate, useLoad } from '../ui.tsx';
import {
  canonicalHashHex,
  checkTargetProof,
  checkTxProof,
  type ProofCheck,
  sha256Hex,
  type TargetProofLike,
  type TxProofLike,
} from '../verify.ts';

/** Files hashed in the browser at most (read whole into memory). */
const fileBytesMax = 512 * 1024 * 1024;

export function VerifyPage({ query }: { readonly query: URLSearchParams }) {
  const hash = (query.get('hash') ?? '').toLowerCase();
  const fileName = query.get('file');
  return (
    <section>
      <h1>Verify a configuration</h1>
      <HashInput initial={hash} />
      {hash === '' ? (
        <Notice kind="info" title="Paste a SHA-256 hash or drop a file">
          The file is hashed in this browser and never leaves it. The page then looks for the hash on the
          ledger and checks the proof here, with WebCrypto.
        </Notice>
      ) : HEX64.test(hash) ? (
        <Result hash={hash} fileName={fileName} />
      ) : (
        <Notice kind="error" title="That is not a SHA-256 hash">
          A configuration hash is 64 hexadecimal digits (0-9, a-f). Paste it whole, or drop the file instead.
        </Notice>
      )}
    </section>
  );
}

function HashInput({ initial }: { readonly initial: string }) {
  const [value, setValue] = useState(initial);
  const [hashing, setHashing] = useState<string | null>(null);
  const [fileError, setFileError] = useState<string | null>(null);
  const go = (hash: string, file?: string) => {
    const params = new URLSearchParams({ hash });
    if (file !== undefined) params.set('file', file);
    navigate(`/verify?${params.toString()}`);
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    go(value.trim().toLowerCase());
  };
  const hashFile = async (file: File) => {
    setFileError(null);
    if (file.size > fileBytesMax) {
      setFileError(
        `${file.name} is ${file.size} bytes; the browser hashes files up to ${fileBytesMax} bytes.`,
      );
      return;
    }
    setHashing(file.name);
    try {
      const hash = await sha256Hex(new Uint8Array(await file.arrayBuffer()));
      setValue(hash);
      go(hash, file.name);
    } catch (err) {
      setFileError(`Could not read ${file.name}: ${(err as Error).message}`);
    } finally {
      setHashing(null);
    }
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    const file = e.dataTransfer.files[0];
    if (file !== undefined) void hashFile(file);
  };
  return (
    <>
      <form className="search" onSubmit={submit}>
        <input
          aria-label="Configuration hash"
          placeholder="SHA-256 of the configuration (64 hex digits)"
          value={value}
          onChange={(e) => setValue(e.target.value)}
          data-testid="verify-hash"
        />
        <button type="submit">Verify</button>
      </form>
      <label className="drop" onDragOver={(e) => e.preventDefault()} onDrop={onDrop}>
        {hashing === null ? 'Drop a file here, or click to choose one' : `Hashing ${hashing}…`}
        <input
          type="file"
          data-testid="verify-file"
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file !== undefined) void hashFile(file);
          }}
        />
      </label>
      {fileError === null ? null : (
        <Notice kind="error" title="The file was not hashed">
          {fileError}
        </Notice>
      )}
    </>
  );
}

interface Occurrence {
  readonly height: number;
  readonly type: string;
  readonly target: string;
  readonly version: number;
  readonly txId: string;
}

type Named =
  | { readonly kind: 'hit'; readonly occurrence: Occurrence; readonly tx: unknown }
  | { readonly kind: 'target'; readonly target: string };

/**
 * Where a hash is on the ledger: transactions naming it in the newest blocks (device reports
 * included), and every version of the targets seen there whose content it is, from their full
 * history (so an old release is found even when its block is older than the blocks read).
 */
async function locate(hash: string) {
  const scan = await scanChain((b) =>
    b.block.txs
      .map((tx): Named | null => {
        const body = tx.body as { sha256?: unknown; target?: unknown; version?: unknown };
        if (body.sha256 !== hash) {
          return typeof body.target === 'string' ? { kind: 'target', target: body.target } : null;
        }
        return {
          kind: 'hit',
          occurrence: {
            height: b.block.header.height,
            type: tx.body.type,
            target: String(body.target ?? ''),
            version: Number(body.version ?? 0),
            txId: '',
          },
          tx,
        };
      })
      .filter((n): n is Named => n !== null),
  );
  // Transaction ids of the scanned hits: SHA-256 of each transaction's canonical JSON.
  const withIds = await Promise.all(
    scan.found.flatMap((n) =>
      n.kind === 'hit' ? [canonicalHashHex(n.tx).then((txId) => ({ ...n.occurrence, txId }))] : [],
    ),
  );
  const targets = new Set([
    'default',
    ...scan.found.map((n) => (n.kind === 'hit' ? n.occurrence.target : n.target)),
  ]);
  const current = new Map<string, string>();
  const seen = new Set(withIds.map((o) => o.txId));
  const fromHistory: Occurrence[] = [];
  await Promise.all(
    [...targets].map(async (t) => {
      try {
        const history = await api.targetHistory(t);
        const newest = history.entries[0];
        if (newest !== undefined) current.set(t, newest.sha256);
        for (const e of history.entries) {
          if (e.sha256 !== hash || seen.has(e.txId)) continue;
          seen.add(e.txId);
          fromHistory.push({ height: e.height, type: e.source, target: t, version: e.version, txId: e.txId });
        }
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }),
  );
  const found = [...withIds, ...fromHistory].sort((a, b) => b.height - a.height);
  return { found, scanned: scan.scanned, truncated: scan.truncated, current };
}

function Result({ hash, fileName }: { readonly hash: string; readonly fileName: string | null }) {
  const found = useLoad(() => locate(hash), [hash]);
  if (found.state === 'loading') return <Loading what="the ledger" />;
  if (found.state === 'error') {
    return (
      <Notice kind="error" title="Could not search the ledger">
        {explain(found.error, 'reading the blocks')}
      </Notice>
    );
  }
  const { found: occurrences, scanned, truncated, current } = found.value;
  const label = fileName === null ? <Hash value={hash} full /> : `${fileName} (${hash})`;
  if (occurrences.length === 0) {
    return (
      <Notice kind="empty" title="Not on the ledger" testId="verify-unknown">
        <p>
          No transaction in the {truncated ? `newest ${scanned}` : `${scanned}`} blocks, and no version in the
          history of the targets named there, has {label}. Do not apply this configuration: it was never
          released or validated on this network. Check that the file is the one you downloaded, or ask an
          admin to release it.
        </p>
      </Notice>
    );
  }
  const isCurrent = [
    ...new Set(occurrences.filter((o) => current.get(o.target) === hash).map((o) => o.target)),
  ];
  return (
    <div data-testid="verify-found">
      <Notice kind="info" title="On the ledger">
        {label} is named by {occurrences.length} transaction{occurrences.length === 1 ? '' : 's'}.
        {isCurrent.length > 0
          ? ` It is the current configuration of ${isCurrent.join(', ')}.`
          : ' It is not the current configuration of its target any more.'}
      </Notice>
      <p className="muted">
        The validators' public keys come from this validator's /v1/validators: the checks show that its
        answers agree with its own key list. A device pins the keys from the network's genesis file instead.
      </p>
      {isCurrent.map((t) => (
        <CurrentProof key={t} target={t} hash={hash} />
      ))}
      {occurrences.map((o) => (
        <OccurrenceView key={o.txId} occurrence={o} />
      ))}
    </div>
  );
}

function OccurrenceView({ occurrence }: { readonly occurrence: Occurrence }) {
  const checks = useLoad(async () => {
    const txId = occurrence.txId;
    const [proof, validators] = await Promise.all([
      api.call('txProof', { params: { id: txId } }),
      api.validators(),
    ]);
    const keys = new Map(validators.validators.map((v) => [v.id, v.publicKey]));
    return {
      txId,
      index: proof.body.index,
      checks: await checkTxProof(proof.body as TxProofLike, keys, validators.validators.length),
    };
  }, [occurrence]);
  const o = occurrence;
  return (
    <article className="occurrence" data-testid="occurrence">
      <h3>
        {o.type} of <Link to={`/configs/${encodeURIComponent(o.target)}`}>{o.target}</Link> v{o.version} in
        block <Link to={`/ledger/${o.height}`}>#{o.height}</Link>
        {checks.state === 'ok' ? ` (transaction ${checks.value.index})` : ''}
      </h3>
      {checks.state === 'loading' ? <Loading what="the proof" /> : null}
      {checks.state === 'error' ? (
        <Notice kind="error" title="The proof could not be fetched">
          {explain(checks.error, 'GET /v1/tx/:id/proof')}
        </Notice>
      ) : null}
      {checks.state === 'ok' ? <Checks checks={checks.value.checks} txId={checks.value.txId} /> : null}
    </article>
  );
}

function Checks({ checks, txId }: { readonly checks: readonly ProofCheck[]; readonly txId: string | null }) {
  const failed = checks.filter((c) => c.state === 'fail').length;
  const skipped = checks.filter((c) => c.state === 'skipped').map((c) => c.name);
  return (
    <>
      <p data-testid="proof-verdict" data-verdict={failed === 0 ? 'valid' : 'invalid'}>
        <strong className={failed === 0 ? 'ok' : 'bad'}>
          {failed === 0
            ? 'Proof checked in this browser'
            : `${failed} check${failed === 1 ? '' : 's'} FAILED`}
        </strong>{' '}
        {txId === null ? null : (
          <>
            · transaction <Hash value={txId} />
          </>
        )}
        {skipped.length > 0 ? <span className="muted"> · not checked here: {skipped.join(', ')}</span> : null}
      </p>
      <ul className="checks">
        {checks.map((c) => (
          <li key={c.name} data-check={c.name} data-state={c.state}>
            <span className={c.state === 'pass' ? 'ok' : c.state === 'fail' ? 'bad' : 'muted'}>
              {c.state === 'pass' ? '✓' : c.state === 'fail' ? '✗' : '–'}
            </span>{' '}
            <strong>{c.name}</strong>: {c.detail}
          </li>
        ))}
      </ul>
    </>
  );
}

/**
 * The target's state proof at the latest certified block (what a device checks before it applies
 * a configuration): the certificate, its signatures, and the entry against the header's stateRoot.
 */
function CurrentProof({ target, hash }: { readonly target: string; readonly hash: string }) {
  const checks = useLoad(async () => {
    const [proof, validators] = await Promise.all([
      api.call('targetProof', { params: { target } }),
      api.validators(),
    ]);
    const body = proof.body as TargetProofLike;
    const keys = new Map(validators.validators.map((v) => [v.id, v.publicKey]));
    const result = await checkTargetProof(body, keys, validators.validators.length);
    const entry = body.entry;
    const same = entry !== null && entry.sha256 === hash;
    result.push({
      name: 'entry names this hash',
      state: same ? 'pass' : 'fail',
      detail: same
        ? `the proven entry is v${entry.version} with this sha256`
        : `the proven entry is ${entry === null ? 'empty' : `v${entry.version} with another hash`}: the target moved on since the page looked`,
    });
    return { checks: result, height: body.header.height };
  }, [target, hash]);
  return (
    <article className="occurrence" data-testid="current-proof">
      <h3>
        Current configuration of <Link to={`/configs/${encodeURIComponent(target)}`}>{target}</Link>
        {checks.state === 'ok' ? ` at block #${checks.value.height}` : ''}
      </h3>
      {checks.state === 'loading' ? <Loading what="the state proof" /> : null}
      {checks.state === 'error' ? (
        checks.error instanceof ApiRequestError &&
        (checks.error.status === 401 || checks.error.status === 403) ? (
          <Notice kind="info" title="This network shows target proofs to enrolled devices only">
            Its genesis does not allow unauthenticated calls, so the browser cannot fetch the state proof; the
            transaction proofs below are public and were checked.
          </Notice>
        ) : (
          <Notice kind="error" title="The state proof could not be fetched">
            {explain(checks.error, `GET /v1/targets/${target}/proof`)}
          </Notice>
        )
      ) : null}
      {checks.state === 'ok' ? <Checks checks={checks.value.checks} txId={null} /> : null}
    </article>
  );
}
