/**
 * Signature checks for the node, done once each.
 *
 * ConsensusVerifier backs the replica's synchronous Verifier: a bounded cache of results keyed by
 * (validator, domain, signature, payload), so nested signatures that the replica checks again
 * (prepared certificates inside view-changes, view-changes inside a new-view) cost a lookup.
 *
 * TxSignatureChecker verifies the signatures of incoming transactions on libuv's thread pool
 * (crypto.verify's callback form), off the event loop, and remembers the ids of transactions whose
 * every signature verified. The ledger's signatureChecked hint then skips those checks when the
 * transaction is applied, so each transaction signature is verified once per node.
 *
 * Where the checks run is the node's choice (VerifyOn). The thread pool pays when a core would
 * otherwise idle: one validator on a machine of its own. When every core already runs an event
 * loop (several validators on one small machine, as `configchain up` makes), handing each check
 * to a pool thread only adds a thread wake-up and a context switch per signature; the system
 * benchmark on 2 cores measured 1.49 ms of validator CPU per committed attest on the event loop
 * against 1.83 ms on the pool (docs/operations.md section 9).
 */
import type { KeyObject } from 'node:crypto';
import type { Verifier } from '../consensus/types.ts';
import { signatureCacheMax } from '../constants.ts';
import type { DomainTag } from '../crypto/domains.ts';
import { publicKeyFromHex, verify, verifyAsync } from '../crypto/ed25519.ts';
import type { SignatureHex, TxId, ValidatorId } from '../encoding/brand.ts';
import { canonicalString } from '../encoding/canonical.ts';
import { type LedgerState, txDomain } from '../ledger/index.ts';
import type { Genesis, Transaction } from '../ledger/types.ts';

/** Where a node checks signatures: on libuv's thread pool, or inline on its event loop. */
export type VerifyOn = 'thread-pool' | 'event-loop';

export const verifyOnChoices: readonly VerifyOn[] = ['thread-pool', 'event-loop'];

/**
 * The default for a node: the thread pool only when the machine has more cores than the
 * validators it runs, so a pool thread finds a core that no event loop is using.
 */
export function defaultVerifyOn(validatorsOnThisMachine: number, cores: number): VerifyOn {
  return cores > validatorsOnThisMachine ? 'thread-pool' : 'event-loop';
}

/** A bounded set or map that forgets its oldest entries first. */
class BoundedMap<K, V> {
  readonly #map = new Map<K, V>();
  constructor(private readonly max: number) {}
  get(key: K): V | undefined {
    return this.#map.get(key);
  }
  has(key: K): boolean {
    return this.#map.has(key);
  }
  set(key: K, value: V): void {
    if (!this.#map.has(key) && this.#map.size >= this.max) {
      const oldest = this.#map.keys().next();
      if (oldest.done !== true) this.#map.delete(oldest.value);
    }
    this.#map.set(key, value);
  }
  get size(): number {
    return this.#map.size;
  }
}

export class ConsensusVerifier implements Verifier {
  readonly #keys: readonly KeyObject[];
  readonly #cache = new BoundedMap<string, boolean>(signatureCacheMax);
  /** True when signatures are checked on the thread pool ahead of the step (preverify). */
  readonly checksAhead: boolean;

  constructor(genesis: Genesis, verifyOn: VerifyOn = 'thread-pool') {
    this.#keys = genesis.validators.map((v) => publicKeyFromHex(v.publicKey));
    this.checksAhead = verifyOn === 'thread-pool';
  }

  /**
   * Checks a signature on the thread pool ahead of the replica's step and caches the result, so
   * that the step's synchronous check is a lookup. Never rejects. On the event loop there is
   * nothing to do ahead: the step's own check verifies (once, then cached).
   */
  async preverify(domain: DomainTag, payload: unknown, signature: string, validator: number): Promise<void> {
    if (!this.checksAhead) return;
    const key = this.#keys[validator];
    const cacheKey = key === undefined ? undefined : this.cacheKey(domain, payload, signature, validator);
    if (key === undefined || cacheKey === undefined || this.#cache.has(cacheKey)) return;
    const ok = await verifyAsync(domain, payload, signature, key);
    this.#cache.set(cacheKey, ok);
  }

  private cacheKey(
    domain: DomainTag,
    payload: unknown,
    signature: string,
    validator: number,
  ): string | undefined {
    if (typeof signature !== 'string') return undefined;
    try {
      return `${validator}\u0000${domain}\u0000${signature}\u0000${canonicalString(payload)}`;
    } catch {
      return undefined;
    }
  }

  verify(domain: DomainTag, payload: unknown, signature: SignatureHex, validator: ValidatorId): boolean {
    const key = this.#keys[validator];
    const cacheKey = this.cacheKey(domain, payload, signature, validator);
    if (key === undefined || cacheKey === undefined) return false;
    const known = this.#cache.get(cacheKey);
    if (known !== undefined) return known;
    let ok: boolean;
    try {
      ok = verify(domain, payload, signature, key);
    } catch {
      ok = false;
    }
    this.#cache.set(cacheKey, ok);
    return ok;
  }
}

export class TxSignatureChecker {
  readonly #validatorKeys: readonly KeyObject[];
  readonly #adminKeys = new Map<string, KeyObject>();
  readonly #verified = new BoundedMap<TxId, true>(signatureCacheMax);
  readonly #onPool: boolean;

  constructor(genesis: Genesis, verifyOn: VerifyOn = 'thread-pool') {
    this.#onPool = verifyOn === 'thread-pool';
    this.#validatorKeys = genesis.validators.map((v) => publicKeyFromHex(v.publicKey));
    for (const admin of genesis.admins) this.#adminKeys.set(admin.id, publicKeyFromHex(admin.publicKey));
  }

  /** The ledger's hint: true only for ids whose every signature this node verified. */
  readonly isChecked = (id: TxId): boolean => this.#verified.has(id);

  /** Marks a transaction this node signed itself (its signature is valid by construction). */
  markOwn(id: TxId): void {
    this.#verified.set(id, true);
  }

  /**
   * Verifies every signature of a parsed transaction, on the thread pool or inline. Resolves true and
   * remembers the id when all verify with the keys the signer rules name; false otherwise
   * (unknown signer, bad signature). The ledger still enforces the signer rules themselves.
   * A release's (or rollout's) approvals by signers unknown to genesis are skipped, as the ledger ignores them:
   * refusing such a release here would drop a transaction the ledger accepts.
   */
  async check(id: TxId, tx: Transaction, state: LedgerState): Promise<boolean> {
    if (this.#verified.has(id)) return true;
    // An attest carries no signature (its signer rule is the validators' own config-source check),
    // except the legacy form, which names its submitter (checked below like a heartbeat).
    if (tx.body.type === 'attest' && tx.body.submitter === undefined) return tx.signatures.length === 0;
    const domain = txDomain(tx.body);
    const keyed: { key: KeyObject; signature: SignatureHex }[] = [];
    for (const approval of tx.signatures) {
      const key = this.keyOf(tx, approval.signer, state);
      if (key !== undefined) keyed.push({ key, signature: approval.signature });
      else if (tx.body.type !== 'release' && tx.body.type !== 'rollout') return false;
    }
    let ok: boolean;
    if (this.#onPool) {
      const results = await Promise.all(keyed.map((k) => verifyAsync(domain, tx.body, k.signature, k.key)));
      ok = results.length > 0 && results.every(Boolean);
    } else {
      ok = keyed.length > 0 && keyed.every((k) => verifyInline(domain, tx.body, k.signature, k.key));
    }
    if (ok) this.#verified.set(id, true);
    return ok;
  }

  private keyOf(tx: Transaction, signer: string, state: LedgerState): KeyObject | undefined {
    const body = tx.body;
    switch (body.type) {
      case 'attest':
      case 'heartbeat': {
        if (body.submitter === undefined) return undefined;
        if (signer !== String(body.submitter)) return undefined;
        return this.#validatorKeys[body.submitter];
      }
      case 'release':
      case 'rollout':
      case 'device-enroll':
      case 'device-revoke':
      case 'rollout-control':
        return this.#adminKeys.get(signer);
      case 'device-report': {
        const device = state.device(body.deviceId);
        if (device === undefined || signer !== body.deviceId) return undefined;
        try {
          return publicKeyFromHex(device.publicKey);
        } catch {
          return undefined;
        }
      }
    }
  }
}

function verifyInline(domain: DomainTag, payload: unknown, signature: SignatureHex, key: KeyObject): boolean {
  try {
    return verify(domain, payload, signature, key);
  } catch {
    return false;
  }
}
