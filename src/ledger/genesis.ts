/**
 * The genesis document: the network's constitution. Every validator, device and auditor pins it,
 * so parseGenesis() checks it completely and says exactly which field is wrong.
 */
import {
  adminIdLengthMax,
  adminsMax,
  artifactBytesMax,
  chainIdLengthMax,
  configSourcesMax,
  inlineContentBytesMax,
  urlLengthMax,
  validatorsMax,
} from '../constants.ts';
import { canonicalHash } from '../crypto/hash.ts';
import type { Hash32Hex, PublicKeyHex, ValidatorId } from '../encoding/brand.ts';
import { assert } from '../errors.ts';
import { HEX32_PATTERN, HEX32_TEXT, NAME_PATTERN, NAME_TEXT, SchemaChecker } from './schema.ts';
import type { AdminInfo, ConfigSource, Genesis, Policy, ValidatorInfo } from './types.ts';

const check: SchemaChecker = new SchemaChecker(
  'GENESIS_INVALID',
  'field',
  'fix the genesis file and restart',
);

const HOST_PORT = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$/;

/** f, the number of faulty validators n = 3f+1 validators tolerate. */
export function faultTolerance(n: number): number {
  assert(Number.isSafeInteger(n) && n >= 1, `validator count must be a positive integer, got ${n}`);
  return Math.floor((n - 1) / 3);
}

/** 2f+1: the matching votes PBFT needs for prepared, committed and checkpoint certificates. */
export function quorum(n: number): number {
  return 2 * faultTolerance(n) + 1;
}

export function genesisHash(genesis: Genesis): Hash32Hex {
  return canonicalHash(genesis);
}

/** Commits to who may vote (ids and keys), not to where they listen, which may change. */
export function validatorSetHash(validators: readonly ValidatorInfo[]): Hash32Hex {
  return canonicalHash(validators.map((v) => ({ id: v.id, publicKey: v.publicKey })));
}

/** Validates an untrusted genesis document; throws LedgerError GENESIS_INVALID naming the field. */
export function parseGenesis(json: unknown): Genesis {
  const g = check.object(json, 'genesis', [
    'chainId',
    'genesisTimeMs',
    'validators',
    'admins',
    'releaseThreshold',
    'configSources',
    'policy',
  ]);
  const chainId = check.string(g.chainId, 'chainId', 1, chainIdLengthMax, NAME_PATTERN, NAME_TEXT);
  const genesisTimeMs = check.integer(g.genesisTimeMs, 'genesisTimeMs', 0, Number.MAX_SAFE_INTEGER);
  const validators = parseValidators(g.validators);
  const admins = parseAdmins(g.admins);
  const releaseThreshold = check.integer(g.releaseThreshold, 'releaseThreshold', 1, admins.length);
  const configSources = parseConfigSources(g.configSources);
  const policy = parsePolicy(g.policy);
  return { chainId, genesisTimeMs, validators, admins, releaseThreshold, configSources, policy };
}

function parseValidators(value: unknown): ValidatorInfo[] {
  const list = check.array(value, 'validators', 4, validatorsMax);
  if ((list.length - 1) % 3 !== 0) {
    check.fail('validators', `PBFT needs n = 3f+1 validators (4, 7, 10, ...), got ${list.length}`);
  }
  const validators = list.map((item, index) => {
    const field = `validators[${index}]`;
    const v = check.object(item, field, ['id', 'publicKey', 'peerAddress', 'apiUrl']);
    const id = check.integer(v.id, `${field}.id`, 0, validatorsMax);
    if (id !== index)
      check.fail(`${field}.id`, `validator ids must be 0..n-1 in order; expected ${index}, got ${id}`);
    return {
      id: id as ValidatorId,
      publicKey: check.string(
        v.publicKey,
        `${field}.publicKey`,
        64,
        64,
        HEX32_PATTERN,
        HEX32_TEXT,
      ) as PublicKeyHex,
      peerAddress: check.string(
        v.peerAddress,
        `${field}.peerAddress`,
        3,
        urlLengthMax,
        HOST_PORT,
        'host:port',
      ),
      apiUrl: parseUrl(v.apiUrl, `${field}.apiUrl`),
    };
  });
  requireUnique(validators, (v) => v.publicKey, 'validators', 'publicKey');
  requireUnique(validators, (v) => v.peerAddress, 'validators', 'peerAddress');
  requireUnique(validators, (v) => v.apiUrl, 'validators', 'apiUrl');
  return validators;
}

function parseAdmins(value: unknown): AdminInfo[] {
  const list = check.array(value, 'admins', 1, adminsMax);
  const admins = list.map((item, index) => {
    const field = `admins[${index}]`;
    const a = check.object(item, field, ['id', 'publicKey']);
    return {
      id: check.string(a.id, `${field}.id`, 1, adminIdLengthMax, NAME_PATTERN, NAME_TEXT),
      publicKey: check.string(
        a.publicKey,
        `${field}.publicKey`,
        64,
        64,
        HEX32_PATTERN,
        HEX32_TEXT,
      ) as PublicKeyHex,
    };
  });
  requireUnique(admins, (a) => a.id, 'admins', 'id');
  requireUnique(admins, (a) => a.publicKey, 'admins', 'publicKey');
  return admins;
}

function parseConfigSources(value: unknown): ConfigSource[] {
  const list = check.array(value, 'configSources', 2, configSourcesMax);
  const sources = list.map((item, index) => {
    const field = `configSources[${index}]`;
    const s = check.object(item, field, ['id', 'url', 'role']);
    return {
      id: check.string(s.id, `${field}.id`, 1, adminIdLengthMax, NAME_PATTERN, NAME_TEXT),
      url: parseUrl(s.url, `${field}.url`),
      role: check.oneOf(s.role, `${field}.role`, ['device-facing', 'validator-facing'] as const),
    };
  });
  requireUnique(sources, (s) => s.id, 'configSources', 'id');
  // Independence is the point of two sources: one server must not play both roles.
  requireUnique(sources, (s) => s.url, 'configSources', 'url');
  const purpose = {
    'device-facing': 'devices download from it',
    'validator-facing': 'validators check against it',
  };
  for (const role of ['device-facing', 'validator-facing'] as const) {
    const count = sources.filter((s) => s.role === role).length;
    if (count !== 1) {
      check.fail('configSources', `needs exactly one ${role} source (${purpose[role]}), found ${count}`);
    }
  }
  return sources;
}

function parsePolicy(value: unknown): Policy {
  const p = check.object(value, 'policy', [
    'heartbeatIntervalMs',
    'headerAgeMsMax',
    'inlineContentBytesMax',
    'contentCopyBytesMax',
    'artifactBytesMax',
    'allowUnauthenticatedCompat',
    'clockSkewMsMax',
  ]);
  const day = 24 * 60 * 60 * 1000;
  const policy: Policy = {
    heartbeatIntervalMs: check.integer(p.heartbeatIntervalMs, 'policy.heartbeatIntervalMs', 1, day),
    headerAgeMsMax: check.integer(p.headerAgeMsMax, 'policy.headerAgeMsMax', 1, 365 * day),
    inlineContentBytesMax: check.integer(
      p.inlineContentBytesMax,
      'policy.inlineContentBytesMax',
      1,
      inlineContentBytesMax,
    ),
    contentCopyBytesMax: check.integer(
      p.contentCopyBytesMax,
      'policy.contentCopyBytesMax',
      1,
      artifactBytesMax,
    ),
    artifactBytesMax: check.integer(p.artifactBytesMax, 'policy.artifactBytesMax', 1, artifactBytesMax),
    allowUnauthenticatedCompat: check.boolean(
      p.allowUnauthenticatedCompat,
      'policy.allowUnauthenticatedCompat',
    ),
    clockSkewMsMax: check.integer(p.clockSkewMsMax, 'policy.clockSkewMsMax', 1, day),
  };
  if (policy.headerAgeMsMax <= policy.heartbeatIntervalMs) {
    check.fail(
      'policy.headerAgeMsMax',
      `must exceed policy.heartbeatIntervalMs (${policy.heartbeatIntervalMs}), or an idle chain looks frozen to devices`,
    );
  }
  if (policy.contentCopyBytesMax > policy.artifactBytesMax) {
    check.fail(
      'policy.contentCopyBytesMax',
      `must not exceed policy.artifactBytesMax (${policy.artifactBytesMax})`,
    );
  }
  return policy;
}

function parseUrl(value: unknown, field: string): string {
  const text = check.string(value, field, 1, urlLengthMax);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    check.fail(field, `must be an absolute http(s) URL, got ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    check.fail(field, `must be an http(s) URL, got ${url.protocol}`);
  }
  return text;
}

function requireUnique<T>(items: readonly T[], keyOf: (item: T) => string, list: string, name: string): void {
  const seen = new Map<string, number>();
  items.forEach((item, index) => {
    const key = keyOf(item);
    const first = seen.get(key);
    if (first !== undefined) {
      check.fail(
        `${list}[${index}].${name}`,
        `duplicates ${list}[${first}].${name} (${key}); each must be unique`,
      );
    }
    seen.set(key, index);
  });
}
