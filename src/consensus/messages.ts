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
import type { BlockHash, Height, View } from '../encoding/brand.ts';
import { commitPayload } from './certificate.ts';
import type { ConsensusMessage, NewView, Verifier, ViewChange } from './types.ts';

export function prePreparePayload(chainId: string, view: View, seq: Height, digest: BlockHash): object {
  return { chainId, view, seq, digest };
}

export function preparePayload(chainId: string, view: View, seq: Height, digest: BlockHash): object {
  return { chainId, view, seq, digest };
}

export function checkpointPayload(chainId: string, seq: Height, digest: BlockHash): object {
  return { chainId, seq, digest };
}

type Unsigned<M> = Omit<M, 'signature'>;

export function viewChangePayload<B>(chainId: string, vc: Unsigned<ViewChange<B>>): object {
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

export function newViewPayload<B>(chainId: string, nv: Unsigned<NewView<B>>): object {
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
