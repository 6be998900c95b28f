/**
 * The exact payloads each consensus message signs, and helpers that sign and check them.
 * Every payload carries chainId, and each kind signs in its own domain (src/crypto/domains.ts),
 * so no signature replays across chains or kinds.
 *
 * What a signature covers: the scalar fields of the message. Blocks are bound through their digest
 * (the replica checks app.digest(block) === digest), and nested messages (checkpoint proofs,
 * prepared certificates, view-changes inside a new-view) are signed by their own senders, so an
 * outer signature covers only their summaries: nobody can change a summary without breaking a
 * signature, and swapping one valid proof for another valid proof of the same summary is harmless.
 */
import { Domain, type DomainTag } from '../crypto/domains.ts';
import { type BlockHash, type Height, isHash32Hex, type View } from '../encoding/brand.ts';
import { commitPayload } from './certificate.ts';
import type { ConsensusMessage, NewView, Verifier, ViewChange } from './types.ts';

function prePreparePayload(chainId: string, view: View, seq: Height, digest: BlockHash): object {
  return { chainId, view, seq, digest };
}

function preparePayload(chainId: string, view: View, seq: Height, digest: BlockHash): object {
  return { chainId, view, seq, digest };
}

function checkpointPayload(chainId: string, seq: Height, digest: BlockHash): object {
  return { chainId, seq, digest };
}

type Unsigned<M> = Omit<M, 'signature'>;

function viewChangePayload<B>(chainId: string, vc: Unsigned<ViewChange<B>>): object {
  return {
    chainId,
    newView: vc.newView,
    replica: vc.replica,
    checkpoint: { seq: vc.checkpoint.seq, digest: vc.checkpoint.digest },
    prepared: vc.prepared.map((c) => ({
      view: c.prePrepare.view,
      seq: c.prePrepare.seq,
      digest: c.prePrepare.digest,
    })),
  };
}

function newViewPayload<B>(chainId: string, nv: Unsigned<NewView<B>>): object {
  return {
    chainId,
    view: nv.view,
    viewChanges: nv.viewChanges.map((vc) => ({ replica: vc.replica, signature: vc.signature })),
    prePrepares: nv.prePrepares.map((pp) => ({ seq: pp.seq, digest: pp.digest })),
  };
}

/** The domain and payload a message's signature is checked against. */
export function signedPart<B>(
  chainId: string,
  message: ConsensusMessage<B>,
): { domain: DomainTag; payload: object } {
  switch (message.kind) {
    case 'pre-prepare':
      return {
        domain: Domain.pbftPrePrepare,
        payload: prePreparePayload(chainId, message.view, message.seq, message.digest),
      };
    case 'prepare':
      return {
        domain: Domain.pbftPrepare,
        payload: preparePayload(chainId, message.view, message.seq, message.digest),
      };
    case 'commit':
      return {
        domain: Domain.pbftCommit,
        payload: commitPayload(chainId, message.view, message.seq, message.digest),
      };
    case 'checkpoint':
      return {
        domain: Domain.pbftCheckpoint,
        payload: checkpointPayload(chainId, message.seq, message.digest),
      };
    case 'view-change':
      return { domain: Domain.pbftViewChange, payload: viewChangePayload(chainId, message) };
    case 'new-view':
      return { domain: Domain.pbftNewView, payload: newViewPayload(chainId, message) };
  }
}

/** True when `message.signature` is `message.replica`'s signature over the message's payload. */
export function verifyMessage<B>(chainId: string, verifier: Verifier, message: ConsensusMessage<B>): boolean {
  const { domain, payload } = signedPart(chainId, message);
  return verifier.verify(domain, payload, message.signature, message.replica);
}

/** A compact, readable one-line description (transcripts, logs): digests shortened to 6 hex digits. */
export function describeMessage<B>(message: ConsensusMessage<B>): string {
  const d = (h: string): string => h.slice(0, 6);
  switch (message.kind) {
    case 'pre-prepare':
      return `PRE-PREPARE v=${message.view} s=${message.seq} d=${d(message.digest)}`;
    case 'prepare':
      return `PREPARE v=${message.view} s=${message.seq} d=${d(message.digest)}`;
    case 'commit':
      return `COMMIT v=${message.view} s=${message.seq} d=${d(message.digest)}`;
    case 'checkpoint':
      return `CHECKPOINT s=${message.seq} d=${d(message.digest)}`;
    case 'view-change': {
      const p = message.prepared.map(
        (c) => `${c.prePrepare.seq}:${d(c.prePrepare.digest)}@${c.prePrepare.view}`,
      );
      return `VIEW-CHANGE v=${message.newView} ckpt=${message.checkpoint.seq}:${d(message.checkpoint.digest)} P=[${p.join(' ')}]`;
    }
    case 'new-view': {
      const v = message.viewChanges.map((vc) => vc.replica).join(',');
      const o = message.prePrepares.map((pp) => `${pp.seq}:${d(pp.digest)}`);
      return `NEW-VIEW v=${message.view} V=[${v}] O=[${o.join(' ')}]`;
    }
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isHash = isHash32Hex;
const isSig = (v: unknown): boolean => typeof v === 'string' && v.length <= 256;

function voteShape(m: Record<string, unknown>, seqField: 'seq'): boolean {
  return (
    isCount(m.view) && isCount(m[seqField]) && isHash(m.digest) && isCount(m.replica) && isSig(m.signature)
  );
}

/**
 * Structural check of a message from the network (field types, array bounds), so that no malformed
 * input can throw inside the replica. It does not check signatures or protocol rules: the replica
 * does. `blockShape` checks a carried block as far as the core cares (the app's functions must not
 * throw on it); drivers normally validate blocks with their own schema first.
 */
export function isWellFormedMessage(
  message: unknown,
  limits: { readonly n: number; readonly window: number },
  blockShape: (block: unknown) => boolean,
): boolean {
  if (!isObject(message)) return false;
  const prePrepare = (m: unknown): boolean =>
    isObject(m) && m.kind === 'pre-prepare' && voteShape(m, 'seq') && blockShape(m.block);
  const vote = (m: unknown, kind: string): boolean => isObject(m) && m.kind === kind && voteShape(m, 'seq');
  const checkpoint = (m: unknown): boolean =>
    isObject(m) &&
    m.kind === 'checkpoint' &&
    isCount(m.seq) &&
    isHash(m.digest) &&
    isCount(m.replica) &&
    isSig(m.signature);
  const viewChange = (m: unknown): boolean => {
    if (
      !isObject(m) ||
      m.kind !== 'view-change' ||
      !isCount(m.newView) ||
      !isCount(m.replica) ||
      !isSig(m.signature)
    ) {
      return false;
    }
    const ck = m.checkpoint;
    if (!isObject(ck) || !isCount(ck.seq) || !isHash(ck.digest) || !Array.isArray(ck.proof)) return false;
    if (ck.proof.length > limits.n || !ck.proof.every(checkpoint)) return false;
    if (!Array.isArray(m.prepared) || m.prepared.length > limits.window) return false;
    return m.prepared.every(
      (c) =>
        isObject(c) &&
        prePrepare(c.prePrepare) &&
        Array.isArray(c.prepares) &&
        c.prepares.length <= limits.n &&
        c.prepares.every((p) => vote(p, 'prepare')),
    );
  };
  switch (message.kind) {
    case 'pre-prepare':
      return prePrepare(message);
    case 'prepare':
    case 'commit':
      return vote(message, message.kind);
    case 'checkpoint':
      return checkpoint(message);
    case 'view-change':
      return viewChange(message);
    case 'new-view':
      return (
        isCount(message.view) &&
        isCount(message.replica) &&
        isSig(message.signature) &&
        Array.isArray(message.viewChanges) &&
        message.viewChanges.length <= limits.n &&
        message.viewChanges.every(viewChange) &&
        Array.isArray(message.prePrepares) &&
        message.prePrepares.length <= limits.window &&
        message.prePrepares.every(prePrepare)
      );
    default:
      return false;
  }
}

/** Structural check of one state-transfer item (block checked by `blockShape`). */
export function isWellFormedCertifiedBlock(
  item: unknown,
  n: number,
  blockShape: (block: unknown) => boolean,
): boolean {
  if (!isObject(item) || !blockShape(item.block)) return false;
  const c = item.certificate;
  if (!isObject(c) || !isCount(c.height) || !isCount(c.view) || !isHash(c.blockHash)) return false;
  if (!Array.isArray(c.signatures) || c.signatures.length > n) return false;
  return c.signatures.every((s) => isObject(s) && isCount(s.validator) && isSig(s.signature));
}
