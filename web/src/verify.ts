/**
 * Proof checks that run in the browser, on WebCrypto only: SHA-256, RFC 9162 inclusion of a
 * transaction in its block's txRoot, the block hash a commit certificate signs, and the
 * certificate's Ed25519 signatures (WebCrypto Ed25519, which current Chromium and Firefox have).
 *
 * The bytes are the ones the validators hash and sign: RFC 8785 canonical JSON from the shared
 * src/encoding/canonical.ts, and the domain tags of src/crypto/domains.ts.
 */
import { Domain } from '../../src/crypto/domains.ts';
import { canonicalString } from '../../src/encoding/canonical.ts';

const encoder = new TextEncoder();

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

export function fromHex(hex: string): Uint8Array {
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new TypeError('not an even number of hex digits');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return toHex(await sha256(bytes));
}

/** SHA-256 of a value's canonical JSON: transaction ids and block hashes. */
export async function canonicalHashHex(value: unknown): Promise<string> {
  return sha256Hex(encoder.encode(canonicalString(value)));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * RFC 9162 section 2.1.3.2: does the audit path show that `leaf` (the leaf data, here a
 * transaction's canonical bytes) is leaf `index` of the `size`-leaf tree with root `rootHex`?
 */
export async function checkInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  path: readonly string[],
  rootHex: string,
): Promise<string | null> {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    return `leaf index ${index} is not below the tree size ${size}`;
  }
  let r = await sha256(concat(Uint8Array.of(0), leaf));
  let fn = index;
  let sn = size - 1;
  for (const hex of path) {
    if (!/^[0-9a-f]{64}$/.test(hex)) return 'an audit path element is not a 32-byte hex hash';
    const p = fromHex(hex);
    if (sn === 0) return 'the audit path is longer than the path from the leaf to the root';
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(Uint8Array.of(1), p, r));
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await sha256(concat(Uint8Array.of(1), r, p));
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return 'the audit path is shorter than the path from the leaf to the root';
  if (!equalBytes(r, fromHex(rootHex))) return "the computed root is not the header's txRoot";
  return null;
}

let ed25519Support: Promise<boolean> | undefined;

/** Whether this browser's WebCrypto verifies Ed25519 (asked once). */
export function hasEd25519(): Promise<boolean> {
  ed25519Support ??= crypto.subtle
    .importKey('raw', new Uint8Array(32), { name: 'Ed25519' }, false, ['verify'])
    .then(
      () => true,
      (err: unknown) => (err as Error).name !== 'NotSupportedError',
    );
  return ed25519Support;
}

/** The bytes a commit signs: domain tag, a zero byte, then canonical JSON of the payload. */
function commitSigningBytes(chainId: string, view: number, height: number, blockHash: string): Uint8Array {
  const payload = canonicalString({ chainId, view, height, blockHash });
  return concat(encoder.encode(Domain.pbftCommit), Uint8Array.of(0), encoder.encode(payload));
}

async function verifyEd25519(publicKeyHex: string, signatureHex: string, data: Uint8Array) {
  const key = await crypto.subtle.importKey(
    'raw',
    fromHex(publicKeyHex) as Uint8Array<ArrayBuffer>,
    { name: 'Ed25519' },
    false,
    ['verify'],
  );
  return crypto.subtle.verify(
    { name: 'Ed25519' },
    key,
    fromHex(signatureHex) as Uint8Array<ArrayBuffer>,
    data as Uint8Array<ArrayBuffer>,
  );
}

export interface Certificate {
  readonly height: number;
  readonly view: number;
  readonly blockHash: string;
  readonly signatures: readonly { readonly validator: number; readonly signature: string }[];
}

export interface SignerCheck {
  readonly validator: number;
  readonly ok: boolean;
}

/** Verifies every signature of a certificate; the caller compares the count with the quorum. */
export async function checkCertificateSignatures(
  chainId: string,
  cert: Certificate,
  publicKeys: ReadonlyMap<number, string>,
): Promise<SignerCheck[]> {
  const data = commitSigningBytes(chainId, cert.view, cert.height, cert.blockHash);
  const seen = new Set<number>();
  const out: SignerCheck[] = [];
  for (const s of cert.signatures) {
    const key = publicKeys.get(s.validator);
    let ok = false;
    if (key !== undefined && !seen.has(s.validator) && /^[0-9a-f]{128}$/.test(s.signature)) {
      ok = await verifyEd25519(key, s.signature, data).catch(() => false);
    }
    seen.add(s.validator);
    out.push({ validator: s.validator, ok });
  }
  return out;
}

/**
 * The checks every proof starts from: the certificate is for this header, and a quorum of its
 * signatures verify (skipped, and said so, where the browser has no WebCrypto Ed25519).
 */
async function certificateChecks(
  header: { readonly chainId: string; readonly height: number },
  certificate: Certificate,
  publicKeys: ReadonlyMap<number, string>,
  validatorCount: number,
  wording: { readonly header: string; readonly listSigners: boolean },
): Promise<ProofCheck[]> {
  const headerHash = await canonicalHashHex(header);
  const sameBlock = headerHash === certificate.blockHash && header.height === certificate.height;
  const forHeader: ProofCheck = {
    name: 'certificate is for this header',
    state: sameBlock ? 'pass' : 'fail',
    detail: sameBlock
      ? `${wording.header} hashes to ${headerHash.slice(0, 16)}…, the block the certificate names`
      : 'the certificate names another block than this header',
  };
  if (!(await hasEd25519())) {
    return [
      forHeader,
      {
        name: 'commit signatures',
        state: 'skipped',
        detail: 'this browser has no WebCrypto Ed25519, so the signatures were not checked here',
      },
    ];
  }
  const signers = await checkCertificateSignatures(header.chainId, certificate, publicKeys);
  const valid = signers.filter((s) => s.ok).map((s) => s.validator);
  const quorum = quorumOf(validatorCount);
  const which = wording.listSigners ? ` (validators ${valid.join(', ')})` : '';
  return [
    forHeader,
    {
      name: 'commit signatures',
      state: valid.length >= quorum ? 'pass' : 'fail',
      detail: `${valid.length} valid Ed25519 signatures${which}, quorum ${quorum} of ${validatorCount}`,
    },
  ];
}

/** 2f+1 of n validators. */
export function quorumOf(n: number): number {
  return 2 * Math.floor((n - 1) / 3) + 1;
}

export type CheckState = 'pass' | 'fail' | 'skipped';

export interface ProofCheck {
  readonly name: string;
  readonly state: CheckState;
  readonly detail: string;
}

export interface TxProofLike {
  readonly txId: string;
  readonly tx: unknown;
  readonly height: number;
  readonly header: { readonly chainId: string; readonly height: number; readonly txRoot: string };
  readonly certificate: Certificate;
  readonly index: number;
  readonly txCount: number;
  readonly inclusion: readonly string[];
}

/**
 * Every check of a transaction proof that the browser can run, each with what it showed. The
 * validators' public keys come from the caller (the dashboard asks /v1/validators); a device
 * would pin them from genesis instead.
 */
export async function checkTxProof(
  proof: TxProofLike,
  publicKeys: ReadonlyMap<number, string>,
  validatorCount: number,
): Promise<ProofCheck[]> {
  const checks: ProofCheck[] = [];
  const txBytes = encoder.encode(canonicalString(proof.tx));
  const id = await sha256Hex(txBytes);
  checks.push({
    name: 'transaction id',
    state: id === proof.txId ? 'pass' : 'fail',
    detail:
      id === proof.txId
        ? 'SHA-256 of the canonical transaction is its id'
        : `the transaction hashes to ${id}, not ${proof.txId}`,
  });
  const inclusion = await checkInclusion(
    proof.index,
    proof.txCount,
    txBytes,
    proof.inclusion,
    proof.header.txRoot,
  );
  checks.push({
    name: 'RFC 9162 inclusion',
    state: inclusion === null ? 'pass' : 'fail',
    detail:
      inclusion ??
      `transaction ${proof.index} of ${proof.txCount}: the ${proof.inclusion.length}-hash audit path leads to the header's txRoot`,
  });
  checks.push(
    ...(await certificateChecks(proof.header, proof.certificate, publicKeys, validatorCount, {
      header: 'the header',
      listSigners: true,
    })),
  );
  return checks;
}

// The state proof of a target (GET /v1/targets/:target/proof) --------------------------------------

export interface SparseProofLike {
  readonly siblings: readonly string[];
  readonly leaf: { readonly path: string; readonly valueHash: string } | null;
}

function bitAt(path: Uint8Array, depth: number): number {
  return ((path[depth >> 3] ?? 0) >> (7 - (depth & 7))) & 1;
}

const HEX32 = /^[0-9a-f]{64}$/;

/**
 * The sparse Merkle proof of src/merkle/sparse.ts, walked from the leaf up: does `proof` show that
 * `key` holds `value` (or, for null, holds nothing) in the state whose root is `rootHex`? Leaves
 * hash 0x00 || SHA-256(key) || SHA-256(canonical value), inner nodes 0x01 || left || right, and an
 * empty subtree is 32 zero bytes.
 */
export async function checkStateProof(
  rootHex: string,
  key: string,
  value: unknown,
  proof: SparseProofLike,
): Promise<string | null> {
  if (!HEX32.test(rootHex)) return 'the state root is not a 32-byte hex hash';
  if (proof.siblings.length > 256 || !proof.siblings.every((s) => HEX32.test(s))) {
    return 'the proof siblings are not at most 256 hex hashes';
  }
  const path = await sha256(encoder.encode(key));
  let current: Uint8Array;
  if (value !== null) {
    if (proof.leaf === null) return 'the proof shows no leaf for an entry that should be there';
    const valueHash = await canonicalHashHex(value);
    if (proof.leaf.path !== toHex(path)) return "the proof's leaf is another key";
    if (proof.leaf.valueHash !== valueHash) return "the proof's leaf holds another value than this entry";
    current = await sha256(concat(Uint8Array.of(0), path, fromHex(valueHash)));
  } else if (proof.leaf === null) {
    current = new Uint8Array(32);
  } else {
    const other = fromHex(proof.leaf.path);
    if (proof.leaf.path === toHex(path)) return 'the proof shows the key present, not absent';
    for (let d = 0; d < proof.siblings.length; d++) {
      if (bitAt(other, d) !== bitAt(path, d)) return "the proof's leaf is not on this key's path";
    }
    current = await sha256(concat(Uint8Array.of(0), other, fromHex(proof.leaf.valueHash)));
  }
  for (let depth = proof.siblings.length - 1; depth >= 0; depth--) {
    const sibling = fromHex(proof.siblings[depth] ?? '');
    current =
      bitAt(path, depth) === 0
        ? await sha256(concat(Uint8Array.of(1), current, sibling))
        : await sha256(concat(Uint8Array.of(1), sibling, current));
  }
  return equalBytes(current, fromHex(rootHex)) ? null : "the computed root is not the header's stateRoot";
}

export interface TargetProofLike {
  readonly target: string;
  readonly header: { readonly chainId: string; readonly height: number; readonly stateRoot: string };
  readonly certificate: Certificate;
  readonly entry: { readonly sha256: string; readonly version: number } | null;
  readonly stateProof: SparseProofLike;
}

/**
 * Every check of a target proof the browser can run: the certificate is for the header, a quorum
 * of its signatures verify, and the target's entry (or its absence) is proven against the
 * header's stateRoot. What the entry says (which version and hash) is the caller's to compare.
 */
export async function checkTargetProof(
  proof: TargetProofLike,
  publicKeys: ReadonlyMap<number, string>,
  validatorCount: number,
): Promise<ProofCheck[]> {
  const checks = await certificateChecks(proof.header, proof.certificate, publicKeys, validatorCount, {
    header: `block #${proof.header.height}`,
    listSigners: false,
  });
  const state = await checkStateProof(
    proof.header.stateRoot,
    `target/${proof.target}`,
    proof.entry,
    proof.stateProof,
  );
  checks.push({
    name: 'state proof',
    state: state === null ? 'pass' : 'fail',
    detail:
      state ??
      (proof.entry === null
        ? `the target has no entry in the state of block #${proof.header.height}`
        : `the entry (v${proof.entry.version}) is in the state root of block #${proof.header.height}`),
  });
  return checks;
}
