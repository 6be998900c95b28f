/**
 * `configchain publish`: puts a configuration (or firmware) file on the ledger as a release.
 *
 *   1. hashes the file and checks its size against genesis policy.artifactBytesMax;
 *   2. picks the version (--version, else the ledger's current version + 1, or 1);
 *   3. uploads it to every config server of genesis (A and B) with an admin's upload signature,
 *      so validators find it on their validator-facing server B before they vote;
 *   4. signs the release body with the named admins' keys; with enough approvals for the genesis
 *      threshold it submits the release and waits for the commit, otherwise it writes the partly
 *      signed transaction to a pending file for `configchain approve` (approve.ts).
 *
 * The rest of this file is what every operator command that writes to the ledger shares (approve,
 * devices enroll/revoke, the device part of `up`): reaching a validator with fail-over, loading
 * admin keys, submitting a transaction and waiting for its commit, and the CLI error wrapper that
 * prints a message instead of a stack trace.
 */
import { createHash, type KeyObject } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { dirname, extname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ApiClient, ApiRequestError } from '../../api/client.ts';
import { uploadAuthorization } from '../../configserver/auth.ts';
import {
  artifactTransferBytesPerSecondMin,
  httpBodyBytesMax,
  mediaTypeLengthMax,
  operatorCommitWaitMs,
  operatorRequestTimeoutMs,
  operatorTxPollMs,
  operatorUploadTimeoutMs,
  targetNameLengthMax,
  txWaitMsMax,
  versionMax,
} from '../../constants.ts';
import { KeyFileError, loadPrivateKey } from '../../crypto/keyfile.ts';
import type { Hash32Hex, Height, TargetName, TxId } from '../../encoding/brand.ts';
import { ConfigChainError } from '../../errors.ts';
import {
  type AdminKey,
  type Genesis,
  type ReleaseBody,
  signRelease,
  type Transaction,
  txId,
} from '../../ledger/index.ts';
import { loadGenesisFile, paths } from '../../node/layout.ts';
import { wholeNumberOption } from '../args.ts';
import { type Progress, type ProgressStream, startProgress } from '../progress.ts';

// Shared by the operator commands -----------------------------------------------------------------

/** An operating error of an operator command: its message says what was wrong and what to do. */
export class OperatorError extends ConfigChainError<string, Record<string, unknown>> {
  constructor(code: string, message: string, data: Record<string, unknown> = {}) {
    super(code, message, data);
    this.name = 'OperatorError';
  }
}

/** Where a command prints its progress lines; --json and `up` pass their own. */
export type Print = (line: string) => void;

/** Loads genesis.json, turning a missing network into an operator error that says what to run. */
export function loadNetworkGenesis(dir: string): Genesis {
  if (!existsSync(paths.genesis(dir))) {
    throw new OperatorError(
      'NETWORK_MISSING',
      `${dir} holds no network (no genesis.json); create one with configchain init --dir ${dir} --demo, or pass the right --dir`,
      { dir },
    );
  }
  return loadGenesisFile(dir);
}

/**
 * The validators a command talks to, in the order it tries them: only --node when given (the
 * operator chose it), otherwise every validator of genesis, so one stopped node is no obstacle.
 */
export class Validators {
  readonly urls: readonly string[];
  private readonly explicit: boolean;

  constructor(genesis: Genesis, node?: string) {
    this.explicit = node !== undefined;
    this.urls = node !== undefined ? [node.replace(/\/+$/, '')] : genesis.validators.map((v) => v.apiUrl);
  }

  /**
   * Runs `call` on the first validator that answers. A network failure or a 5xx moves on to the
   * next; any other HTTP answer is the network's answer and is passed up unchanged.
   */
  async use<T>(what: string, call: (client: ApiClient) => Promise<T>): Promise<T> {
    const failures: string[] = [];
    let serverErrors = 0;
    for (const url of this.urls) {
      try {
        return await call(new ApiClient(url, { timeoutMs: operatorRequestTimeoutMs }));
      } catch (err) {
        if (err instanceof ApiRequestError && err.status < 500) throw err;
        if (err instanceof ConfigChainError && !(err instanceof ApiRequestError)) throw err;
        if (err instanceof ApiRequestError) {
          serverErrors++;
          failures.push(err.message);
        } else {
          failures.push(`${url}: ${describeFetchError(err)}`);
        }
      }
    }
    if (serverErrors === failures.length) {
      throw new OperatorError(
        'NODE_FAILED',
        `every validator tried failed while ${what} (${failures.join('; ')}); their logs (DIR/validators/<id>/data/node.log) say why`,
        { failures },
      );
    }
    const hint = this.explicit
      ? 'check that the validator at --node runs (configchain up, or configchain node), or pass another --node URL'
      : 'start the network (configchain up --dir DIR), or pass --node URL of a validator that runs';
    throw new OperatorError(
      'NODE_UNREACHABLE',
      `no validator answered while ${what} (${failures.join('; ')}); ${hint}`,
      { failures },
    );
  }
}

function describeFetchError(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  if (e.cause?.code !== undefined) return e.cause.code;
  if (e.cause?.message !== undefined) return e.cause.message;
  return e.message ?? String(err);
}

/** The ids of the admin keys in DIR/admins that genesis knows, sorted. */
export function adminKeyIds(dir: string, genesis: Genesis): string[] {
  const folder = paths.adminsDir(dir);
  if (!existsSync(folder)) return [];
  const known = new Set(genesis.admins.map((a) => a.id));
  return readdirSync(folder)
    .filter((name) => name.endsWith('.key'))
    .map((name) => name.slice(0, -'.key'.length))
    .filter((id) => known.has(id))
    .sort();
}

/** Loads DIR/admins/<id>.key and checks that it is the key genesis names for that admin. */
export function loadAdminKey(dir: string, genesis: Genesis, id: string): AdminKey {
  const admin = genesis.admins.find((a) => a.id === id);
  if (admin === undefined) {
    throw new OperatorError(
      'ADMIN_UNKNOWN',
      `"${id}" is not an admin of this network (genesis admins: ${genesis.admins.map((a) => a.id).join(', ')}); pass one of them with --admin`,
      { admin: id },
    );
  }
  const file = paths.adminKey(dir, id);
  if (!existsSync(file)) {
    throw new OperatorError(
      'ADMIN_KEY_MISSING',
      `the key of admin ${id} is not in ${file}; copy that admin's key file there (mode 0600), or have its holder run the command`,
      { admin: id, file },
    );
  }
  let pair: ReturnType<typeof loadPrivateKey>;
  try {
    pair = loadPrivateKey(file);
  } catch (err) {
    if (err instanceof KeyFileError) throw new OperatorError('ADMIN_KEY_INVALID', err.message, { file });
    throw new OperatorError(
      'ADMIN_KEY_INVALID',
      `cannot read the key of admin ${id} from ${file} (${(err as Error).message}); it must be the PKCS#8 PEM file init wrote`,
      { file },
    );
  }
  if (pair.publicKeyHex !== admin.publicKey) {
    throw new OperatorError(
      'ADMIN_KEY_MISMATCH',
      `${file} is not the key genesis names for admin ${id} (its public key is ${pair.publicKeyHex}, genesis has ${admin.publicKey}); use that admin's own key file`,
      { file },
    );
  }
  return { id, privateKey: pair.privateKey };
}

/** The admin who signs alone (devices, rollout controls): --admin, else the first admin key in DIR/admins. */
export function loadSigningAdmin(dir: string, genesis: Genesis, id: string | undefined): AdminKey {
  if (id !== undefined) return loadAdminKey(dir, genesis, id);
  const first = adminKeyIds(dir, genesis)[0];
  if (first === undefined) {
    throw new OperatorError(
      'ADMIN_KEY_MISSING',
      `no admin key of this network is in ${paths.adminsDir(dir)}; put one there (mode 0600) or name one with --admin`,
    );
  }
  return loadAdminKey(dir, genesis, first);
}

/** Splits a comma-separated --admin value into ids, refusing repeats. */
export function parseAdminList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const ids = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (ids.length === 0) throw new OperatorError('ADMIN_UNKNOWN', '--admin names no admin; pass ID[,ID...]');
  if (new Set(ids).size !== ids.length) {
    throw new OperatorError(
      'ADMIN_REPEATED',
      `--admin names an admin twice (${value}); each approval counts once`,
    );
  }
  return ids;
}

export interface Committed {
  readonly txId: TxId;
  readonly height: Height;
  readonly blockHash: string;
}

/**
 * Submits a signed transaction and waits (bounded) until it is committed. A rejection becomes an
 * OperatorError carrying the ledger's code and reason; a transaction still pending at the deadline
 * becomes one that says how to look it up later.
 */
/**
 * Every validator downloads and hashes a release's artifact from its config server before the
 * release can commit: a large one is given time for that at the slowest transfer rate allowed.
 */
export function artifactCheckWaitMs(size: number): number {
  return Math.ceil((size / artifactTransferBytesPerSecondMin) * 1000);
}

export async function submitAndWait(
  validators: Validators,
  tx: Transaction,
  what: string,
  extraWaitMs = 0,
): Promise<Committed> {
  const id = txId(tx);
  const waitMs = operatorCommitWaitMs + extraWaitMs;
  const deadline = Date.now() + waitMs;
  // The node may hold the answer for waitMs; half the request timeout leaves the rest for the
  // answer itself, so a slow commit (a large artifact being checked) comes back as pending and
  // is polled below instead of timing out and being sent to the next validator.
  const result = await validators.use(`submitting the ${what}`, (c) =>
    c.submitTx(tx, Math.min(txWaitMsMax, operatorCommitWaitMs, Math.floor(operatorRequestTimeoutMs / 2))),
  );
  if (result.status === 'rejected') {
    throw new OperatorError(
      'TX_REJECTED',
      `the validators rejected the ${what} (${result.code ?? 'TX_INVALID'}): ${result.reason ?? 'no reason given'}`,
      { txId: id, code: result.code, reason: result.reason },
    );
  }
  if (result.status === 'committed' && result.height !== undefined) {
    return { txId: id, height: result.height as Height, blockHash: result.blockHash ?? '' };
  }
  // Pending: accepted for ordering but not committed within the wait; ask until the deadline.
  for (;;) {
    const found = await validators
      .use(`looking up transaction ${id}`, (c) => c.tx(id))
      .catch((err: unknown) => {
        if (err instanceof ApiRequestError && err.status === 404) return null;
        throw err;
      });
    if (found !== null) return { txId: id, height: found.height as Height, blockHash: found.blockHash };
    if (Date.now() > deadline) {
      throw new OperatorError(
        'TX_PENDING',
        `the ${what} (tx ${id}) was accepted but is not committed after ${Math.round(waitMs / 1000)} s; the network may be unable to reach a quorum: check configchain up's status line, then GET /v1/tx/${id}`,
        { txId: id },
      );
    }
    await new Promise((r) => setTimeout(r, operatorTxPollMs));
  }
}

/**
 * Runs a command's action: an operating error prints "configchain <name>: <message>" and exits 1;
 * anything else is a bug and keeps its stack trace.
 */
async function runAction(name: string, action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (err) {
    if (err instanceof ConfigChainError || err instanceof KeyFileError) {
      console.error(`configchain ${name}: ${err.message}`);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
}

/**
 * Runs a command that writes to the ledger: without --json its progress lines go to stdout as it
 * goes; with --json nothing but the result, as JSON. Errors as runAction.
 */
export function runWrite(
  name: string,
  json: boolean,
  action: (print: Print) => Promise<unknown>,
): Promise<void> {
  return runAction(name, async () => {
    const result = await action(json ? () => {} : (line) => console.log(line));
    if (json) console.log(JSON.stringify(result, null, 2));
  });
}

/** Writes JSON through a temporary file and a rename, so a reader never sees half a file. */
export function writeJsonAtomic(file: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o644 });
  renameSync(tmp, file);
}

// Publishing -------------------------------------------------------------------------------------

/** What a pending file holds: a release that still needs approvals. */
export interface PendingRelease {
  readonly kind: 'configchain-pending-release';
  readonly tx: Transaction;
}

export interface PublishOptions {
  readonly dir: string;
  readonly target: string;
  readonly file: string;
  readonly version?: number;
  readonly mediaType?: string;
  /** Admins to sign with; default: the admin keys in DIR/admins, up to the threshold. */
  readonly admins?: readonly string[];
  readonly node?: string;
  /** Where to write a partly signed release; default DIR/pending/<target>-<version>.json. */
  readonly pending?: string;
  readonly print: Print;
  /** Shows each upload's progress there (a bar on a terminal, else lines via print); none when absent. */
  readonly progressStream?: ProgressStream;
}

export interface UploadOutcome {
  readonly server: string;
  readonly url: string;
  readonly status: 'created' | 'exists';
}

export type PublishResult =
  | {
      readonly status: 'committed';
      readonly target: string;
      readonly version: number;
      readonly sha256: Hash32Hex;
      readonly size: number;
      readonly approvals: readonly string[];
      readonly uploads: readonly UploadOutcome[];
      readonly txId: TxId;
      readonly height: Height;
    }
  | {
      readonly status: 'pending';
      readonly target: string;
      readonly version: number;
      readonly sha256: Hash32Hex;
      readonly size: number;
      readonly approvals: readonly string[];
      readonly uploads: readonly UploadOutcome[];
      readonly threshold: number;
      readonly pendingFile: string;
      readonly next: string;
    };

const mediaTypes: Readonly<Record<string, string>> = {
  '.json': 'application/json',
  '.yaml': 'application/yaml',
  '.yml': 'application/yaml',
  '.txt': 'text/plain',
  '.conf': 'text/plain',
  '.cfg': 'text/plain',
  '.ini': 'text/plain',
  '.toml': 'application/toml',
  '.xml': 'application/xml',
  '.bin': 'application/octet-stream',
};

export function defaultPendingFile(dir: string, target: string, version: number): string {
  return join(dir, 'pending', `${target}-${version}.json`);
}

export async function publish(options: PublishOptions): Promise<PublishResult> {
  const dir = resolve(options.dir);
  const { print } = options;
  const genesis = loadNetworkGenesis(dir);
  const target = checkTarget(options.target);
  const mediaType = checkMediaType(options.mediaType ?? mediaTypes[extname(options.file).toLowerCase()]);

  const artifact = await hashArtifact(options.file, genesis.policy.artifactBytesMax);
  const { sha256, size } = artifact;

  const adminIds = options.admins ?? adminKeyIds(dir, genesis).slice(0, genesis.releaseThreshold);
  if (adminIds.length === 0) {
    throw new OperatorError(
      'ADMIN_KEY_MISSING',
      `no admin key of this network is in ${paths.adminsDir(dir)}; put one there (mode 0600) or name one with --admin`,
    );
  }
  // Every key is loaded before anything is uploaded, so a missing key fails early.
  const keys = adminIds.map((id) => loadAdminKey(dir, genesis, id));
  const uploader = keys[0] as AdminKey;

  const validators = new Validators(genesis, options.node);
  const version = options.version ?? (await nextVersion(validators, target));
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new OperatorError('VERSION_INVALID', `--version must be an integer >= 1, got ${version}`);
  }
  print(
    `Publishing ${options.file} as ${target} version ${version}: ${size} bytes, sha256 ${sha256}, ${mediaType}`,
  );

  const uploads: UploadOutcome[] = [];
  for (const source of genesis.configSources) {
    const progressStream = options.progressStream;
    const outcome = await uploadTo(source.id, source.url, {
      target,
      version,
      artifact,
      mediaType,
      adminId: uploader.id,
      adminKey: uploader.privateKey,
      ...(progressStream === undefined
        ? {}
        : {
            progress: () =>
              startProgress({
                label: `  upload to ${source.id}`,
                total: size,
                stream: progressStream,
                line: print,
              }),
          }),
    });
    uploads.push(outcome);
    print(
      `  config server ${source.id} ${source.url}: ${outcome.status === 'created' ? 'uploaded' : 'already holds these bytes'}`,
    );
  }

  const body: ReleaseBody = {
    type: 'release',
    chainId: genesis.chainId,
    target: target as TargetName,
    version,
    sha256,
    size,
    mediaType,
  };
  const tx = signRelease(body, keys);
  const approvals = keys.map((k) => k.id);
  print(
    `  signed by ${approvals.join(', ')} (${approvals.length} of the ${genesis.releaseThreshold} needed)`,
  );

  if (approvals.length < genesis.releaseThreshold) {
    const pendingFile = resolve(options.pending ?? defaultPendingFile(dir, target, version));
    writePending(pendingFile, tx);
    const missing = genesis.admins.map((a) => a.id).filter((id) => !approvals.includes(id));
    const next = approveCommand(dir, pendingFile, missing[0] ?? 'ADMIN', options.node);
    print(`  not enough approvals yet: the release waits in ${pendingFile}`);
    print(`  next, another admin (${missing.join(' or ')}) runs:`);
    print(`    ${next}`);
    return {
      status: 'pending',
      target,
      version,
      sha256,
      size,
      approvals,
      uploads,
      threshold: genesis.releaseThreshold,
      pendingFile,
      next,
    };
  }

  const committed = await submitAndWait(
    validators,
    tx,
    `release of ${target} version ${version}`,
    artifactCheckWaitMs(size),
  );
  print(`  committed in block ${committed.height}, tx ${committed.txId}`);
  return {
    status: 'committed',
    target,
    version,
    sha256,
    size,
    approvals,
    uploads,
    txId: committed.txId,
    height: committed.height,
  };
}

export function approveCommand(dir: string, pendingFile: string, admin: string, node?: string): string {
  return `configchain approve --dir ${dir} --pending ${pendingFile} --admin ${admin}${node === undefined ? '' : ` --node ${node}`}`;
}

export function writePending(file: string, tx: Transaction): void {
  const pending: PendingRelease = { kind: 'configchain-pending-release', tx };
  writeJsonAtomic(file, pending);
}

function checkTarget(target: string): string {
  if (target.length < 1 || target.length > targetNameLengthMax || !/^[A-Za-z0-9._:@-]+$/.test(target)) {
    throw new OperatorError(
      'TARGET_INVALID',
      `--target must be 1-${targetNameLengthMax} characters of letters, digits and . _ : @ -, got ${JSON.stringify(target)}`,
    );
  }
  return target;
}

function checkMediaType(mediaType: string | undefined): string {
  const value = mediaType ?? 'application/octet-stream';
  if (value.length < 1 || value.length > mediaTypeLengthMax || !/^[\x21-\x7e]+$/.test(value)) {
    throw new OperatorError(
      'MEDIA_TYPE_INVALID',
      `--media-type must be a media type such as text/plain (printable, no spaces, at most ${mediaTypeLengthMax} characters), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** A file to publish: its path, and the size and hash it had when it was read. */
interface Artifact {
  readonly file: string;
  readonly size: number;
  readonly sha256: Hash32Hex;
}

/**
 * Hashes the file as a stream after checking its size against the policy, so a huge file is
 * refused unread and a large one never sits in memory whole.
 */
async function hashArtifact(file: string, bytesMax: number): Promise<Artifact> {
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new Error('not a regular file');
    size = stat.size;
  } catch (err) {
    throw new OperatorError('FILE_UNREADABLE', `cannot read --file ${file}: ${(err as Error).message}`, {
      file,
    });
  }
  if (size > bytesMax) {
    throw new OperatorError(
      'FILE_TOO_LARGE',
      `${file} is ${size} bytes, more than this network's policy.artifactBytesMax of ${bytesMax} bytes; publish a smaller artifact (split or compress it)`,
      { file, size, bytesMax },
    );
  }
  const hash = createHash('sha256');
  let read = 0;
  for await (const chunk of createReadStream(file)) {
    read += (chunk as Buffer).byteLength;
    if (read > size) break;
    hash.update(chunk as Buffer);
  }
  if (read !== size) {
    throw new OperatorError(
      'FILE_CHANGED',
      `${file} changed while it was read (${size} bytes before, ${read} read); publish it again once it is written`,
    );
  }
  return { file, size, sha256: hash.digest('hex') as Hash32Hex };
}

/** The ledger's current version of the target + 1, or 1 when it has none. */
async function nextVersion(validators: Validators, target: string): Promise<number> {
  const current = await validators
    .use(`reading target ${target}`, (c) => c.target(target))
    .catch((err: unknown) => {
      if (err instanceof ApiRequestError && err.status === 404) return null;
      throw err;
    });
  return current === null ? 1 : current.version + 1;
}

/**
 * Uploads the file to one config server, streaming it from disk. The server's index is asked
 * first, so bytes it already holds at (target, version) are not sent again and other bytes there
 * are refused before any upload. The server checks that the body hashes to the signed sha256, so
 * a file that changes during the upload is refused too.
 */
async function uploadTo(
  server: string,
  url: string,
  request: {
    target: string;
    version: number;
    artifact: Artifact;
    mediaType: string;
    adminId: string;
    adminKey: KeyObject;
    /** Starts a progress display, only when bytes are actually sent. */
    progress?: () => Progress;
  },
): Promise<UploadOutcome> {
  const { target, version, artifact } = request;
  const path = `/v1/targets/${encodeURIComponent(target)}/versions/${version}`;
  const unreachable = (err: unknown) =>
    new OperatorError(
      'CONFIG_SERVER_UNREACHABLE',
      `config server ${server} at ${url} does not answer (${describeFetchError(err)}); start it (configchain up, or configchain config-server --id ${server}) and publish again; uploads already made are kept and a repeat is harmless`,
      { server, url },
    );
  const conflict = (held: string) =>
    new OperatorError(
      'VERSION_CONFLICT',
      `config server ${server} already holds different content as ${target} version ${version} (sha256 ${held}, this file ${artifact.sha256}). Versions are immutable: publish this file as a new version (--version)`,
      { server, held },
    );

  let held: string | null;
  try {
    held = await storedHash(url, target, version);
  } catch (err) {
    throw unreachable(err);
  }
  if (held === artifact.sha256) return { server, url, status: 'exists' };
  if (held !== null) throw conflict(held);

  const authorization = uploadAuthorization(request.adminId, request.adminKey, {
    method: 'PUT',
    path,
    sha256: artifact.sha256,
    timestampMs: Date.now(),
  });
  const progress = request.progress?.();
  let answered: { status: number; text: string };
  try {
    answered = await putFile(
      url + path,
      artifact.file,
      {
        authorization,
        'content-type': request.mediaType,
        'content-length': String(artifact.size),
      },
      operatorUploadTimeoutMs,
      (sent) => progress?.update(sent),
    );
  } catch (err) {
    throw unreachable(err);
  } finally {
    progress?.stop();
  }
  let answer: { status?: unknown; code?: unknown; message?: unknown } = {};
  try {
    const parsed: unknown = JSON.parse(answered.text);
    if (typeof parsed === 'object' && parsed !== null) answer = parsed as typeof answer;
  } catch {
    // Not JSON (a proxy's error page): the status alone tells what happened.
  }
  if (answered.status === 200 || answered.status === 201) {
    return { server, url, status: answer.status === 'exists' ? 'exists' : 'created' };
  }
  const reason = typeof answer.message === 'string' ? answer.message : 'no reason given';
  if (answer.code === 'ARTIFACT_CONFLICT') throw conflict('other');
  throw new OperatorError(
    'UPLOAD_REFUSED',
    `config server ${server} refused the upload of ${target} version ${version} (${answered.status}${typeof answer.code === 'string' ? ` ${answer.code}` : ''}): ${reason}`,
    { server, status: answered.status },
  );
}

/**
 * PUTs a file with node:http and a piped file stream. Not fetch: undici reads a stream body ahead
 * of the socket, so a 200 MB upload held about 200 MB of memory; a pipe keeps back-pressure, and
 * memory stays at a few buffers whatever the size. The answer is read up to httpBodyBytesMax, and
 * an answer that arrives before the whole body was sent (a refusal) is still returned.
 */
function putFile(
  target: string,
  file: string,
  headers: Record<string, string>,
  timeoutMs: number,
  onSent: (bytes: number) => void,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(target);
    const source = createReadStream(file);
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'PUT', headers });
    let settled = false;
    let responded = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      source.destroy();
      req.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`the upload took longer than ${timeoutMs} ms`)), timeoutMs);
    req.on('response', (res) => {
      responded = true;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.byteLength;
        if (size <= httpBodyBytesMax) chunks.push(chunk);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        source.destroy();
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    });
    // A server that refuses early closes while the body is still being sent: its answer counts.
    req.on('error', (err) => {
      if (!responded) fail(err);
    });
    let sent = 0;
    source.on('data', (chunk) => {
      sent += chunk.length;
      onSent(sent);
    });
    source.on('error', fail);
    source.pipe(req);
  });
}

/** The sha256 a config server holds at (target, version), or null when it holds nothing there. */
async function storedHash(url: string, target: string, version: number): Promise<string | null> {
  const query = `?after=${version - 1}&limit=1`;
  const response = await fetch(`${url}/v1/targets/${encodeURIComponent(target)}/versions${query}`, {
    signal: AbortSignal.timeout(operatorRequestTimeoutMs),
  });
  // 404: the server holds no version of this target at all.
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`GET versions answered ${response.status}`);
  const body = (await response.json()) as { versions?: { version: number; sha256: string }[] };
  return body.versions?.find((v) => v.version === version)?.sha256 ?? null;
}

export function registerPublish(program: Command): void {
  // The program's own --version would otherwise also match `publish --version N` and print the
  // CLI version: with positional options, program options count only before the subcommand.
  program.enablePositionalOptions();
  program
    .command('publish')
    .description(
      'upload a file to every config server and release it on the ledger, signed by admin keys (threshold from genesis)',
    )
    .requiredOption('--dir <dir>', 'the network directory (its genesis.json and admins/)')
    .requiredOption('--target <target>', 'the configuration target, e.g. "default"')
    .requiredOption('--file <file>', 'the configuration or firmware file to release')
    .option(
      '--version <n>',
      "the release version; default: the ledger's current version + 1",
      wholeNumberOption('--version', 1, versionMax),
    )
    .option(
      '--media-type <type>',
      'media type; default from the file extension, else application/octet-stream',
    )
    .option(
      '--admin <ids>',
      'admins to sign with, comma-separated; default: the keys in DIR/admins, up to the threshold',
    )
    .option('--node <url>', 'a validator API URL; default: every validator of genesis, in turn')
    .option(
      '--pending <file>',
      'where to write the release if it needs more approvals; default DIR/pending/<target>-<version>.json',
    )
    .option('--json', 'print the result as JSON only', false)
    .action(
      (opts: {
        dir: string;
        target: string;
        file: string;
        version?: number;
        mediaType?: string;
        admin?: string;
        node?: string;
        pending?: string;
        json: boolean;
      }) =>
        runWrite('publish', opts.json, (print) => {
          const admins = parseAdminList(opts.admin);
          return publish({
            dir: opts.dir,
            target: opts.target,
            file: opts.file,
            ...(opts.version !== undefined ? { version: opts.version } : {}),
            ...(opts.mediaType !== undefined ? { mediaType: opts.mediaType } : {}),
            ...(admins !== undefined ? { admins } : {}),
            ...(opts.node !== undefined ? { node: opts.node } : {}),
            ...(opts.pending !== undefined ? { pending: opts.pending } : {}),
            print,
            ...(opts.json ? {} : { progressStream: process.stdout }),
          });
        }),
    );
}
