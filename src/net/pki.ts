/**
 * The network's own PKI: one self-signed CA per network and one certificate per validator,
 * used for mutual TLS on peer links. Keys are ECDSA P-256, which every TLS 1.3 stack accepts;
 * validator identity on the wire is the certificate's common name, validator-<id>.
 *
 * These are TLS credentials only. Consensus messages are signed separately with each
 * validator's Ed25519 key (src/crypto/ed25519.ts), so a stolen TLS key alone cannot forge votes.
 */
import 'reflect-metadata';
import { createPrivateKey, webcrypto } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { ValidatorId } from '../encoding/brand.ts';
import { assert, ConfigChainError } from '../errors.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const subtle = webcrypto.subtle;
const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Certificates start a little in the past so a peer whose clock is slightly behind still accepts them. */
const BACKDATE_MS = 60 * 60 * 1000;

/** A certificate and its private key, both PEM (PKCS#8 for the key). */
export interface CertAndKey {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface NodeCertOptions {
  readonly commonName: string;
  readonly ips?: readonly string[];
  readonly dns?: readonly string[];
  readonly validityDays?: number;
}

export interface CaOptions {
  readonly validityDays?: number;
}

/** The common name a validator's TLS certificate carries; peers are identified by it. */
export function validatorCommonName(id: ValidatorId | number): string {
  assert(Number.isSafeInteger(id) && id >= 0, `validator id must be a non-negative integer, got ${id}`);
  return `validator-${id}`;
}

const VALIDATOR_CN = /^validator-(0|[1-9][0-9]{0,8})$/;

/** The validator id in a common name such as "validator-3", or null if it is not one. */
export function validatorIdFromCommonName(commonName: unknown): ValidatorId | null {
  if (typeof commonName !== 'string') return null;
  const match = VALIDATOR_CN.exec(commonName);
  if (match === null || match[1] === undefined) return null;
  return Number(match[1]) as ValidatorId;
}

export async function createCa(commonName: string, options: CaOptions = {}): Promise<CertAndKey> {
  assert(commonName.length > 0 && !/[,=+<>#;"\\]/.test(commonName), 'a CA common name is plain text');
  const keys = (await subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${commonName}`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + (options.validityDays ?? 3650) * DAY_MS),
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/**
 * A leaf certificate signed by the CA, valid for both ends of a mutual-TLS link (serverAuth and
 * clientAuth), with the given IP and DNS subject alternative names.
 */
export async function issueNodeCert(ca: CertAndKey, options: NodeCertOptions): Promise<CertAndKey> {
  assert(
    options.commonName.length > 0 && !/[,=+<>#;"\\]/.test(options.commonName),
    'a node common name is plain text',
  );
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importPrivateKeyPem(ca.keyPem);
  const keys = (await subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  const altNames: x509.JsonGeneralName[] = [
    ...(options.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
    ...(options.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
  ];
  if (altNames.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(altNames));
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${options.commonName}`,
    issuer: caCert.subject,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + (options.validityDays ?? 3650) * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** The certificate a validator presents: CN validator-<id>, SAN IP 127.0.0.1 and DNS localhost by default. */
export function issueValidatorCert(
  ca: CertAndKey,
  id: ValidatorId | number,
  names: { ips?: readonly string[]; dns?: readonly string[] } = {},
): Promise<CertAndKey> {
  return issueNodeCert(ca, {
    commonName: validatorCommonName(id),
    ips: names.ips ?? ['127.0.0.1'],
    dns: names.dns ?? ['localhost'],
  });
}

/** Writes the certificate (mode 0644) and the key (mode 0600, owner only), creating directories. */
export function writeCertAndKey(certPath: string, keyPath: string, pair: CertAndKey): void {
  mkdirSync(dirname(certPath), { recursive: true });
  mkdirSync(dirname(keyPath), { recursive: true });
  writeFileSync(certPath, pair.certPem, { mode: 0o644 });
  writeFileSync(keyPath, pair.keyPem, { mode: 0o600 });
  // The mode option only applies when the file is created; an existing file keeps its old mode.
  chmodSync(keyPath, 0o600);
}

export function loadCertAndKey(certPath: string, keyPath: string): CertAndKey {
  return { certPem: readPem(certPath, 'CERTIFICATE'), keyPem: readPem(keyPath, 'PRIVATE KEY') };
}

/** Reads a PEM file and checks it holds the expected kind of block, with an error that says which file. */
export function readPem(path: string, label: 'CERTIFICATE' | 'PRIVATE KEY'): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigChainError(
      'PKI_FILE_MISSING',
      `cannot read ${path} (${(error as Error).message}); create the network's certificates with configchain init`,
      { path },
    );
  }
  if (!text.includes(`-----BEGIN ${label}-----`)) {
    throw new ConfigChainError(
      'PKI_FILE_INVALID',
      `${path} does not hold a PEM ${label.toLowerCase()}; recreate it with configchain init`,
      { path, label },
    );
  }
  return text;
}

/** The subject common name of a PEM certificate (for checking a loaded identity before using it). */
export function certificateCommonName(certPem: string): string | null {
  const cert = new x509.X509Certificate(certPem);
  const names = cert.subjectName.getField('CN');
  return names[0] ?? null;
}

/** True if certPem was signed by caPem's key and is within its validity period at nowMs. */
export async function isIssuedBy(
  certPem: string,
  caPem: string,
  nowMs: number = Date.now(),
): Promise<boolean> {
  const cert = new x509.X509Certificate(certPem);
  const ca = new x509.X509Certificate(caPem);
  return cert.verify({ publicKey: ca.publicKey, date: new Date(nowMs) });
}

async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
    .export({ format: 'pem', type: 'pkcs8' })
    .toString();
}

async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pem).export({ format: 'der', type: 'pkcs8' });
  return subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
}
