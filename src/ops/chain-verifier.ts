/**
 * Verifies a chain one block at a time against the genesis document an operator holds, trusting
 * nothing the blocks' source says: every block hash is recomputed from its header, each link
 * checked, each commit certificate checked against the genesis validators (2f+1 distinct known
 * signers over this height and block hash), and each block re-applied to the state replayed from
 * genesis, so the ledger checks the transaction root, the state root and every transaction's
 * signatures and rules. The first block that fails is named by its height.
 *
 * The same verifier serves the operator commands (blocks read from a validator's API) and
 * verify-chain (blocks read from an export file). It is pure: no I/O, no clock.
 */
import type { KeyObject } from 'node:crypto';
import { verifyCommitCertificate } from '../consensus/certificate.ts';
import { publicKeyFromHex } from '../crypto/ed25519.ts';
import type { BlockHash, Height, TxId } from '../encoding/brand.ts';
import { AssertionFailure, assert, ConfigChainError } from '../errors.ts';
import {
  applyBlock,
  blockHash,
  genesisBlock,
  LedgerError,
  LedgerState,
  parseBlockHeader,
  txId,
} from '../ledger/index.ts';
import type { Block, BlockHeader, CommitCertificate, Genesis, Transaction } from '../ledger/types.ts';

/** A block that passed every check, with what the commands read from it. */
export interface VerifiedBlock {
  readonly height: Height;
  readonly hash: BlockHash;
  readonly block: Block;
  /** Null only for block 0, which genesis itself certifies. */
  readonly certificate: CommitCertificate | null;
  /** The id of each transaction, in block order. */
  readonly txIds: readonly TxId[];
}

export interface ChainCheckData {
  /** The first height that does not check out. */
  readonly height: number;
}

/** The chain (or one block of it) is not what the genesis and the certificates allow. */
export class ChainCheckError extends ConfigChainError<'CHAIN_INVALID', ChainCheckData> {
  readonly height: number;

  constructor(height: number, reason: string) {
    super('CHAIN_INVALID', `block ${height} does not verify: ${reason}`, { height });
    this.name = 'ChainCheckError';
    this.height = height;
  }
}

export class ChainVerifier {
  readonly genesis: Genesis;
  readonly #validatorKeys: readonly KeyObject[];
  readonly #genesisBlockHash: BlockHash;
  #parent: BlockHeader | null = null;
  #parentHash: BlockHash | null = null;
  #state: LedgerState = LedgerState.empty();

  constructor(genesis: Genesis) {
    this.genesis = genesis;
    this.#validatorKeys = genesis.validators.map((v) => publicKeyFromHex(v.publicKey));
    this.#genesisBlockHash = blockHash(genesisBlock(genesis).header);
  }

  /** Height of the newest verified block; -1 before block 0. */
  get height(): number {
    return this.#parent === null ? -1 : this.#parent.height;
  }

  /** Hash of the newest verified block; null before block 0. */
  get tipHash(): BlockHash | null {
    return this.#parentHash;
  }

  /** Header of the newest verified block; null before block 0. */
  get tipHeader(): BlockHeader | null {
    return this.#parent;
  }

  /** The ledger state after the newest verified block, replayed from genesis. */
  get state(): LedgerState {
    return this.#state;
  }

  /**
   * Verifies `record` ({hash, block: {header, txs}, certificate}, as GET /v1/blocks and export
   * files carry it) as the block at height this.height + 1. Throws ChainCheckError naming that
   * height when anything is wrong; the verifier is then unchanged.
   */
  accept(record: unknown): VerifiedBlock {
    const height = this.height + 1;
    const raw = recordShape(record, height);
    let header: BlockHeader;
    try {
      header = parseBlockHeader(raw.block.header);
    } catch (error) {
      throw asCheckError(error, height);
    }
    if (header.height !== height) {
      throw new ChainCheckError(height, `its header says height ${header.height}, expected ${height}`);
    }
    const hash = blockHash(header);
    if (raw.hash !== hash) {
      throw new ChainCheckError(
        height,
        `it is sent as block ${String(raw.hash)}, but its header hashes to ${hash}`,
      );
    }
    const block: Block = { header, txs: raw.block.txs as readonly Transaction[] };
    const verified = height === 0 ? this.#acceptGenesisBlock(raw, hash) : this.#acceptChild(raw, block, hash);
    this.#parent = header;
    this.#parentHash = hash;
    return verified;
  }

  #acceptGenesisBlock(raw: RawRecord, hash: BlockHash): VerifiedBlock {
    if (hash !== this.#genesisBlockHash) {
      throw new ChainCheckError(
        0,
        'it is not the genesis block of the genesis file you hold (another network, or a changed genesis)',
      );
    }
    if (raw.certificate !== null)
      throw new ChainCheckError(0, 'block 0 carries a certificate; genesis certifies it');
    if (raw.block.txs.length !== 0) throw new ChainCheckError(0, 'the genesis block holds transactions');
    const block = genesisBlock(this.genesis);
    return { height: block.header.height, hash, block, certificate: null, txIds: [] };
  }

  #acceptChild(raw: RawRecord, block: Block, hash: BlockHash): VerifiedBlock {
    const parent = this.#parent;
    assert(parent !== null, 'block 0 is verified before its children');
    const height = block.header.height;
    if (block.header.prevHash !== this.#parentHash) {
      throw new ChainCheckError(
        height,
        `its prevHash ${block.header.prevHash} is not the verified hash ${this.#parentHash} of block ${height - 1}`,
      );
    }
    if (raw.certificate === null) throw new ChainCheckError(height, 'it has no commit certificate');
    const certificate = certificateShape(raw.certificate, height);
    const check = verifyCommitCertificate(certificate, {
      chainId: this.genesis.chainId,
      validators: this.#validatorKeys,
      expected: { height, blockHash: hash },
    });
    if (!check.ok) throw new ChainCheckError(height, `its commit certificate is not valid: ${check.reason}`);
    let state: LedgerState;
    let txIds: TxId[];
    try {
      state = applyBlock(this.genesis, parent, this.#state, block).state;
      // applyBlock parsed every transaction, so computing the ids cannot fail on their shape.
      txIds = block.txs.map((tx) => txId(tx));
    } catch (error) {
      throw asCheckError(error, height);
    }
    this.#state = state;
    return { height, hash, block, certificate, txIds };
  }
}

interface RawRecord {
  readonly hash: unknown;
  readonly block: { readonly header: unknown; readonly txs: readonly unknown[] };
  readonly certificate: unknown;
}

/** Exactly the fields a block record has, nothing else: every byte of a record must mean something. */
function recordShape(record: unknown, height: number): RawRecord {
  const r = exactObject(record, ['hash', 'block', 'certificate'], 'the block record', height);
  const b = exactObject(r.block, ['header', 'txs'], 'the block', height);
  if (!Array.isArray(b.txs)) throw new ChainCheckError(height, 'block.txs is not a list');
  return { hash: r.hash, block: { header: b.header, txs: b.txs }, certificate: r.certificate };
}

function certificateShape(value: unknown, height: number): CommitCertificate {
  const c = exactObject(value, ['height', 'view', 'blockHash', 'signatures'], 'the certificate', height);
  if (!Array.isArray(c.signatures)) throw new ChainCheckError(height, 'certificate.signatures is not a list');
  for (const entry of c.signatures)
    exactObject(entry, ['validator', 'signature'], 'a certificate signature', height);
  return c as unknown as CommitCertificate;
}

function exactObject(
  value: unknown,
  keys: readonly string[],
  what: string,
  height: number,
): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ChainCheckError(height, `${what} is not a JSON object`);
  }
  const present = Object.keys(value);
  const unknown = present.filter((k) => !keys.includes(k));
  const missing = keys.filter((k) => !Object.hasOwn(value, k));
  if (unknown.length > 0 || missing.length > 0) {
    const parts = [
      ...(missing.length > 0 ? [`misses ${missing.join(', ')}`] : []),
      ...(unknown.length > 0 ? [`has unknown fields ${unknown.slice(0, 5).join(', ')}`] : []),
    ];
    throw new ChainCheckError(height, `${what} ${parts.join(' and ')}`);
  }
  return value as Record<string, unknown>;
}

/**
 * The ledger's verdicts name what is wrong with the data. Any other error thrown while checking
 * untrusted data still means this block cannot be verified; only broken invariants of our own
 * code (assertions) propagate as the bugs they are.
 */
function asCheckError(error: unknown, height: number): ChainCheckError {
  if (error instanceof AssertionFailure) throw error;
  if (error instanceof LedgerError) return new ChainCheckError(height, error.data.reason);
  return new ChainCheckError(height, `it is malformed (${(error as Error).message})`);
}
