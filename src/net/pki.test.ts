import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigChainError } from '../errors.ts';
import {
  certificateCommonName,
  createCa,
  isIssuedBy,
  issueNodeCert,
  issueValidatorCert,
  loadCertAndKey,
  validatorIdFromCommonName,
  writeCertAndKey,
} from './pki.ts';

describe('pki', () => {
  it('creates a CA and a validator certificate for mutual TLS', async () => {
    const ca = await createCa('configchain-test-ca');
    const leaf = await issueValidatorCert(ca, 2);
    const caCert = new X509Certificate(ca.certPem);
    const cert = new X509Certificate(leaf.certPem);
    assert.equal(caCert.ca, true);
    assert.equal(cert.ca, false);
    assert.equal(cert.checkIssued(caCert), true);
    assert.equal(cert.verify(caCert.publicKey), true);
    assert.equal(cert.subject, 'CN=validator-2');
    assert.match(cert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.match(cert.subjectAltName ?? '', /DNS:localhost/);
    assert.deepEqual([...(cert.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(certificateCommonName(leaf.certPem), 'validator-2');
    assert.equal(await isIssuedBy(leaf.certPem, ca.certPem), true);
  });

  it('a certificate from another CA does not verify against this one', async () => {
    const ca = await createCa('ca-one');
    const other = await createCa('ca-two');
    const leaf = await issueNodeCert(other, { commonName: 'validator-0' });
    assert.equal(await isIssuedBy(leaf.certPem, ca.certPem), false);
    assert.equal(new X509Certificate(leaf.certPem).verify(new X509Certificate(ca.certPem).publicKey), false);
  });

  it('writes keys owner-only and loads them back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'configchain-pki-'));
    try {
      const ca = await createCa('ca');
      const certPath = join(dir, 'v', 'tls.crt');
      const keyPath = join(dir, 'v', 'tls.key');
      writeCertAndKey(certPath, keyPath, ca);
      assert.equal(statSync(keyPath).mode & 0o777, 0o600);
      assert.deepEqual(loadCertAndKey(certPath, keyPath), ca);
      assert.throws(
        () => loadCertAndKey(join(dir, 'missing.crt'), keyPath),
        (e: unknown) => e instanceof ConfigChainError && e.code === 'PKI_FILE_MISSING',
      );
      assert.throws(
        () => loadCertAndKey(keyPath, keyPath),
        (e: unknown) => e instanceof ConfigChainError && e.code === 'PKI_FILE_INVALID',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parses validator common names strictly', () => {
    assert.equal(validatorIdFromCommonName('validator-0'), 0);
    assert.equal(validatorIdFromCommonName('validator-13'), 13);
    for (const bad of [
      'validator-',
      'validator-01',
      'validator--1',
      'xvalidator-1',
      'validator-1 ',
      7,
      undefined,
    ]) {
      assert.equal(validatorIdFromCommonName(bad), null, String(bad));
    }
  });
});
