/**
 * A config server client: signed uploads (what `configchain publish` needs) and downloads with
 * the hash checked. Uses fetch; every call is bounded by a timeout.
 */
import type { KeyObject } from 'node:crypto';
import { sha256Hex } from '../crypto/hash.ts';
import { ConfigChainError } from '../errors.ts';
import { uploadAuthorization } from './auth.ts';

export interface UploadRequest {
  readonly target: string;
  readonly version: number;
  readonly content: Uint8Array;
  readonly mediaType: string;
  readonly adminId: string;
  readonly adminKey: KeyObject;
}

export interface UploadAnswer {
  readonly status: 'created' | 'exists';
  readonly target: string;
  readonly version: number;
  readonly sha256: string;
  readonly size: number;
  readonly mediaType: string;
}

export class ConfigServerError extends ConfigChainError<string, { status: number; url: string }> {}

export class ConfigServerClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;

  constructor(baseUrl: string, timeoutMs = 30_000) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.timeoutMs = timeoutMs;
  }

  /** Uploads one version, signed by an admin; throws ConfigServerError with the server's reason. */
  async upload(req: UploadRequest): Promise<UploadAnswer> {
    const path = `/v1/targets/${encodeURIComponent(req.target)}/versions/${req.version}`;
    const authorization = uploadAuthorization(req.adminId, req.adminKey, {
      method: 'PUT',
      path,
      sha256: sha256Hex(req.content),
      timestampMs: Date.now(),
    });
    const res = await fetch(this.baseUrl + path, {
      method: 'PUT',
      body: req.content,
      headers: { authorization, 'content-type': req.mediaType },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (res.status !== 200 && res.status !== 201) {
      throw new ConfigServerError(
        typeof body.code === 'string' ? body.code : `HTTP_${res.status}`,
        `upload to ${this.baseUrl + path} answered ${res.status}: ${typeof body.message === 'string' ? body.message : 'no reason given'}`,
        { status: res.status, url: this.baseUrl + path },
      );
    }
    return body as unknown as UploadAnswer;
  }

  /** Downloads a version and checks it hashes to the sha256 the server announces. */
  async download(target: string, version: number | 'latest'): Promise<{ content: Buffer; sha256: string }> {
    const path =
      version === 'latest'
        ? `/v1/targets/${encodeURIComponent(target)}/latest`
        : `/v1/targets/${encodeURIComponent(target)}/versions/${version}`;
    const res = await fetch(this.baseUrl + path, { signal: AbortSignal.timeout(this.timeoutMs) });
    if (!res.ok) {
      const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
      throw new ConfigServerError(
        typeof body.code === 'string' ? body.code : `HTTP_${res.status}`,
        `GET ${this.baseUrl + path} answered ${res.status}: ${typeof body.message === 'string' ? body.message : ''}`,
        { status: res.status, url: this.baseUrl + path },
      );
    }
    const content = Buffer.from(await res.arrayBuffer());
    const sha256 = sha256Hex(content);
    const announced = res.headers.get('x-configchain-sha256');
    if (announced !== null && announced !== sha256) {
      throw new ConfigServerError(
        'CONTENT_MISMATCH',
        `${this.baseUrl + path} announced sha256 ${announced} but sent content hashing to ${sha256}; do not use it`,
        { status: res.status, url: this.baseUrl + path },
      );
    }
    return { content, sha256 };
  }
}
