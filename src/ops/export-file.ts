/**
 * The chain export file (`configchain export`, `configchain verify-chain`): JSON lines.
 *
 *   line 1   {"format":"configchain-chain-export","version":1,"chainId":...,"genesisHash":...,"tipHeight":T}
 *   line 2   the genesis document
 *   line 3+  block h on line h+3: {"hash":...,"block":{"header":...,"txs":[...]},"certificate":...}
 *
 * Every byte means something that verify-chain checks: the header's fields against the genesis
 * and the blocks, the genesis against its hash (and against the operator's own genesis when
 * given), and each block with ChainVerifier (hash, link, certificate, transaction and state roots,
 * signatures and ledger rules). So a single changed byte anywhere makes verification fail, and the
 * failure names the block height of the line where it happened. The writer verifies every block
 * before writing it, writes FILE.tmp, fsyncs it and renames it, so FILE is either the old file or
 * a complete new one.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { exportLineBytesMax } from '../constants.ts';
import { assert } from '../errors.ts';
import { genesisHash, LedgerError, parseGenesis } from '../ledger/index.ts';
import type { Genesis } from '../ledger/types.ts';
import { type ChainReader, causeOf } from './chain-reader.ts';
import { ChainCheckError, ChainVerifier } from './chain-verifier.ts';
import { OpsError } from './errors.ts';

export const exportFormat = 'configchain-chain-export';
export const exportVersion = 1;

export interface ExportHeader {
  readonly format: typeof exportFormat;
  readonly version: typeof exportVersion;
  readonly chainId: string;
  readonly genesisHash: string;
  readonly tipHeight: number;
}

export interface ExportSummary {
  readonly file: string;
  readonly chainId: string;
  readonly tipHeight: number;
  readonly transactions: number;
  readonly bytes: number;
}

/** Bytes collected before one write call. */
const writeChunkBytes = 1024 * 1024;

/**
 * Reads the reader's source up to the tip it names now, verifying every block, and writes the
 * export file atomically. Throws ChainCheckError at the first block that does not verify (nothing
 * is written then) and OpsError IO when the file cannot be written.
 */
export async function exportChain(reader: ChainReader, file: string): Promise<ExportSummary> {
  assert(reader.verifier.height === -1, 'an export starts from a reader that has read nothing yet');
  const target = resolve(file);
  const tmp = `${target}.tmp`;
  const genesis = reader.genesis;
  const first = await reader.source.page(0, 1);
  const tipHeight = first.tipHeight;
  if (!Number.isSafeInteger(tipHeight) || tipHeight < 0) {
    throw new ChainCheckError(0, `${reader.source.name} names no valid tip height`);
  }
  const header: ExportHeader = {
    format: exportFormat,
    version: exportVersion,
    chainId: genesis.chainId,
    genesisHash: genesisHash(genesis),
    tipHeight,
  };
  let fd: number;
  try {
    fd = openSync(tmp, 'w', 0o644);
  } catch (error) {
    throw new OpsError('IO', `cannot create ${tmp}: ${causeOf(error)}`, { file: tmp });
  }
  let bytes = 0;
  let transactions = 0;
  let pending: string[] = [];
  let pendingBytes = 0;
  const flush = () => {
    const chunk = Buffer.from(pending.join(''), 'utf8');
    writeSync(fd, chunk);
    bytes += chunk.byteLength;
    pending = [];
    pendingBytes = 0;
  };
  const writeLine = (value: unknown) => {
    const line = `${JSON.stringify(value)}\n`;
    pending.push(line);
    pendingBytes += line.length;
    if (pendingBytes >= writeChunkBytes) flush();
  };
  try {
    writeLine(header);
    writeLine(genesis);
    const verifiedTip = await reader.sync(
      (block) => {
        transactions += block.block.txs.length;
        writeLine({ hash: block.hash, block: block.block, certificate: block.certificate });
      },
      { upTo: tipHeight },
    );
    if (verifiedTip !== tipHeight) {
      throw new ChainCheckError(
        verifiedTip + 1,
        `${reader.source.name} named tip ${tipHeight} but served blocks only to ${verifiedTip}`,
      );
    }
    flush();
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, target);
    syncDirectory(dirname(target));
  } catch (error) {
    try {
      closeSync(fd);
    } catch {
      // Already closed after a successful fsync; the rename is what failed.
    }
    rmSync(tmp, { force: true });
    if (error instanceof ChainCheckError || error instanceof OpsError) throw error;
    throw new OpsError('IO', `cannot write ${target}: ${causeOf(error)}`, { file: target });
  }
  return { file: target, chainId: genesis.chainId, tipHeight, transactions, bytes };
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export type VerifyExportResult =
  | {
      readonly ok: true;
      readonly file: string;
      readonly chainId: string;
      readonly genesisHash: string;
      readonly tipHeight: number;
      readonly transactions: number;
    }
  | {
      readonly ok: false;
      readonly file: string;
      /** The first bad block height; null when the header or genesis line is what is wrong. */
      readonly height: number | null;
      /** 1-based line of the file where the problem is. */
      readonly line: number;
      readonly reason: string;
    };

export interface VerifyExportOptions {
  /** The genesis the operator holds; the file's genesis must be exactly it. */
  readonly genesis?: Genesis;
}

class Bad extends Error {
  constructor(
    readonly line: number,
    readonly height: number | null,
    reason: string,
  ) {
    super(reason);
  }
}

/**
 * Verifies an export file offline. Returns ok with the tip, or the first problem with its line
 * and block height. Throws OpsError IO only when the file cannot be read at all.
 */
export async function verifyExportFile(
  file: string,
  options: VerifyExportOptions = {},
): Promise<VerifyExportResult> {
  const path = resolve(file);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new OpsError('IO', `cannot read ${path}: ${causeOf(error)}`, { file: path });
  }
  try {
    let header: ExportHeader | null = null;
    let verifier: ChainVerifier | null = null;
    let transactions = 0;
    let lineNumber = 0;
    let endsWithNewline = true;
    for await (const { text, complete } of lines(handle, path)) {
      lineNumber++;
      endsWithNewline = complete;
      if (lineNumber === 1) {
        header = parseHeader(text);
      } else if (lineNumber === 2) {
        assert(header !== null, 'the header line comes first');
        verifier = new ChainVerifier(parseFileGenesis(text, header, options.genesis));
      } else {
        assert(header !== null && verifier !== null, 'the header and genesis lines come first');
        const height = lineNumber - 3;
        if (height > header.tipHeight) {
          throw new Bad(
            lineNumber,
            height,
            `line ${lineNumber} holds a block ${height}, beyond the tip ${header.tipHeight} the header names`,
          );
        }
        const record = parseLine(text, lineNumber, height);
        try {
          transactions += verifier.accept(record).block.txs.length;
        } catch (error) {
          if (error instanceof ChainCheckError) throw new Bad(lineNumber, error.height, error.message);
          throw error;
        }
      }
    }
    if (header === null || verifier === null) {
      throw new Bad(
        lineNumber + 1,
        null,
        `the file ends after ${lineNumber} lines, before the header and genesis lines: it is empty or truncated`,
      );
    }
    if (verifier.height < header.tipHeight) {
      throw new Bad(
        lineNumber + 1,
        verifier.height + 1,
        `the file ends after block ${verifier.height}, but its header says the chain goes to block ${header.tipHeight}: it is truncated`,
      );
    }
    if (!endsWithNewline) {
      throw new Bad(
        lineNumber,
        verifier.height,
        `the last line (block ${verifier.height}) does not end with a newline: the file is truncated or changed`,
      );
    }
    return {
      ok: true,
      file: path,
      chainId: header.chainId,
      genesisHash: header.genesisHash,
      tipHeight: header.tipHeight,
      transactions,
    };
  } catch (error) {
    if (error instanceof Bad) {
      return { ok: false, file: path, height: error.height, line: error.line, reason: error.message };
    }
    throw error;
  } finally {
    await handle.close();
  }
}

function parseHeader(text: string): ExportHeader {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Bad(
      1,
      null,
      `line 1 (the export header) is not JSON (${(error as Error).message}): this is not a ConfigChain export, or its first line is damaged`,
    );
  }
  const h = value as Record<string, unknown> | null;
  const keys = ['format', 'version', 'chainId', 'genesisHash', 'tipHeight'];
  if (
    typeof h !== 'object' ||
    h === null ||
    Array.isArray(h) ||
    Object.keys(h).length !== keys.length ||
    !keys.every((k) => Object.hasOwn(h, k))
  ) {
    throw new Bad(1, null, `line 1 (the export header) must be exactly {${keys.join(', ')}}`);
  }
  if (h.format !== exportFormat) {
    throw new Bad(
      1,
      null,
      `line 1: format is ${JSON.stringify(h.format)}, not "${exportFormat}": this is not a ConfigChain export`,
    );
  }
  if (h.version !== exportVersion) {
    throw new Bad(
      1,
      null,
      `line 1: export version ${JSON.stringify(h.version)} is not ${exportVersion}, the only one this tool reads`,
    );
  }
  if (typeof h.chainId !== 'string' || typeof h.genesisHash !== 'string') {
    throw new Bad(1, null, 'line 1: chainId and genesisHash must be strings');
  }
  if (typeof h.tipHeight !== 'number' || !Number.isSafeInteger(h.tipHeight) || h.tipHeight < 0) {
    throw new Bad(1, null, `line 1: tipHeight ${JSON.stringify(h.tipHeight)} is not a block height`);
  }
  return h as unknown as ExportHeader;
}

function parseFileGenesis(text: string, header: ExportHeader, pinned: Genesis | undefined): Genesis {
  let genesis: Genesis;
  try {
    genesis = parseGenesis(JSON.parse(text));
  } catch (error) {
    const why = error instanceof LedgerError ? error.message : `not JSON (${(error as Error).message})`;
    throw new Bad(2, null, `line 2 (the genesis document) is not a valid genesis: ${why}`);
  }
  const hash = genesisHash(genesis);
  if (hash !== header.genesisHash) {
    throw new Bad(
      2,
      null,
      `line 2: the genesis document hashes to ${hash}, the header (line 1) says ${header.genesisHash}`,
    );
  }
  if (genesis.chainId !== header.chainId) {
    throw new Bad(
      1,
      null,
      `line 1 names chain ${JSON.stringify(header.chainId)}, the genesis is of ${JSON.stringify(genesis.chainId)}`,
    );
  }
  if (pinned !== undefined && genesisHash(pinned) !== hash) {
    throw new Bad(
      2,
      null,
      `the file's genesis (chain ${genesis.chainId}, hash ${hash}) is not the genesis you hold (chain ${pinned.chainId}, hash ${genesisHash(pinned)})`,
    );
  }
  return genesis;
}

function parseLine(text: string, line: number, height: number): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Bad(
      line,
      height,
      `line ${line} (block ${height}) is not valid JSON (${(error as Error).message}): the file is damaged or truncated there`,
    );
  }
}

/**
 * The file's lines, read in chunks. `complete` is false only for a last line without a newline.
 * A line longer than exportLineBytesMax is refused, naming the height it would hold.
 */
async function* lines(
  handle: Awaited<ReturnType<typeof open>>,
  path: string,
): AsyncGenerator<{ text: string; complete: boolean }> {
  const chunk = Buffer.alloc(1024 * 1024);
  let parts: Buffer[] = [];
  let partBytes = 0;
  let lineNumber = 0;
  for (;;) {
    let read: number;
    try {
      ({ bytesRead: read } = await handle.read(chunk, 0, chunk.length, null));
    } catch (error) {
      throw new OpsError('IO', `cannot read ${path}: ${causeOf(error)}`, { file: path });
    }
    if (read === 0) break;
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(10, start);
      if (newline < 0 || newline >= read) break;
      parts.push(Buffer.from(chunk.subarray(start, newline)));
      lineNumber++;
      checkLength(partBytes + newline - start, lineNumber);
      yield { text: Buffer.concat(parts).toString('utf8'), complete: true };
      parts = [];
      partBytes = 0;
      start = newline + 1;
    }
    if (start < read) {
      parts.push(Buffer.from(chunk.subarray(start, read)));
      partBytes += read - start;
      checkLength(partBytes, lineNumber + 1);
    }
  }
  if (partBytes > 0) yield { text: Buffer.concat(parts).toString('utf8'), complete: false };
}

function checkLength(bytes: number, line: number): void {
  if (bytes > exportLineBytesMax) {
    throw new Bad(
      line,
      line >= 3 ? line - 3 : null,
      `line ${line} is longer than ${exportLineBytesMax} bytes: not a block this chain could hold`,
    );
  }
}
