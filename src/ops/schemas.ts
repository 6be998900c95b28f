/**
 * The --json output of every operator command, as TypeBox schemas: scripts can rely on these
 * shapes, and the system tests check each command's output against them. Objects are closed
 * (additionalProperties: false), so a field added without its schema fails the tests.
 */
import { type Static, type TSchema, Type } from 'typebox';
import { RolloutStatusSchema } from '../api/routes.ts';

const closed = { additionalProperties: false } as const;
const Obj = <P extends Record<string, TSchema>>(properties: P) => Type.Object(properties, closed);
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const Hex64 = Type.String({ pattern: '^[0-9a-f]{64}$' });
const Height = Type.Integer({ minimum: 0 });
const Time = Type.String({ description: 'ISO 8601, UTC' });

export const SignerSchema = Obj({
  kind: Type.Union([Type.Literal('admin'), Type.Literal('validator'), Type.Literal('device')]),
  id: Type.String(),
});

/** Where the verified chain ends: every command verifies from genesis up to here. */
export const VerifiedTipSchema = Obj({
  height: Height,
  hash: Hex64,
  time: Time,
});

const DeviceListSchema = Obj({ ids: Type.Array(Type.String()), count: Type.Integer({ minimum: 0 }) });

export const ErrorOutputSchema = Obj({
  error: Obj({
    code: Type.String(),
    message: Type.String(),
    /** The first block height that did not verify, when that is what went wrong. */
    height: Nullable(Height),
  }),
});

/**
 * `devices list --json`: every device of the registry in the verified state, sorted by id. A bare
 * array (not wrapped with chainId and verified like the others), because scripts already read it
 * that way from before the list was verified.
 */
export const DevicesOutputSchema = Type.Array(
  Obj({
    kind: Type.Literal('device'),
    deviceId: Type.String(),
    publicKey: Hex64,
    group: Type.String(),
    target: Type.String(),
    status: Type.Union([Type.Literal('enrolled'), Type.Literal('revoked')]),
    enrolledAt: Height,
    lastSeq: Type.Integer({ minimum: 0 }),
    lastReport: Nullable(
      Obj({
        version: Type.Integer(),
        sha256: Hex64,
        status: Type.Union([Type.Literal('applied'), Type.Literal('failed'), Type.Literal('mismatch')]),
        height: Height,
      }),
    ),
  }),
);

/** A rollout still under way (running, halted, or aborted and resumable), in status --json. */
export const StatusRolloutSchema = Obj({
  rolloutId: Type.String(),
  target: Type.String(),
  version: Type.Integer(),
  status: RolloutStatusSchema,
  rollback: Type.Boolean(),
  reason: Type.String(),
  maxFailuresPercent: Type.Integer({ minimum: 0 }),
  /** Counted from 1, as rollout show prints it. */
  currentWave: Type.Integer({ minimum: 1 }),
  controlSeq: Type.Integer({ minimum: 0 }),
  createdAt: Height,
  waves: Type.Array(
    Obj({
      wave: Type.Integer({ minimum: 1 }),
      upToPercent: Type.Integer(),
      devices: Type.Integer({ minimum: 0 }),
      successes: Type.Integer({ minimum: 0 }),
      failures: Type.Integer({ minimum: 0 }),
      threshold: Type.Integer({ minimum: 0 }),
      open: Type.Boolean(),
    }),
  ),
});

export const StatusOutputSchema = Obj({
  chainId: Type.String(),
  node: Type.String({ description: 'the validator the chain was read from' }),
  verified: VerifiedTipSchema,
  network: Obj({
    validators: Type.Integer(),
    faultsTolerated: Type.Integer(),
    up: Type.Integer({ description: 'validators that answered GET /v1/status' }),
    view: Nullable(Type.Integer()),
    primary: Nullable(Type.Integer()),
    height: Nullable(Height),
  }),
  validators: Type.Array(
    Obj({
      id: Type.Integer(),
      apiUrl: Type.String(),
      up: Type.Boolean(),
      error: Nullable(Type.String()),
      view: Nullable(Type.Integer()),
      height: Nullable(Height),
      tipHash: Nullable(Type.String()),
      primary: Nullable(Type.Integer()),
      viewChanging: Nullable(Type.Boolean()),
      peersUp: Nullable(Type.Integer()),
      peersDown: Nullable(Type.Integer()),
      /** Its tip hash compared with the verified chain: null when that block is not at hand. */
      agreesWithVerifiedChain: Nullable(Type.Boolean()),
    }),
  ),
  fleet: Obj({
    enrolled: Type.Integer(),
    revoked: Type.Integer(),
    targets: Type.Array(
      Obj({
        target: Type.String(),
        version: Type.Integer(),
        sha256: Hex64,
        source: Type.Union([Type.Literal('release'), Type.Literal('attest')]),
        height: Height,
        devices: Type.Integer(),
        runningCurrent: Type.Integer(),
        failing: Type.Integer(),
      }),
    ),
    devices: Type.Array(
      Obj({
        deviceId: Type.String(),
        target: Type.String(),
        group: Type.String(),
        status: Type.Union([Type.Literal('enrolled'), Type.Literal('revoked')]),
        lastReport: Nullable(
          Obj({ version: Type.Integer(), sha256: Hex64, status: Type.String(), height: Height }),
        ),
        runsCurrent: Type.Boolean(),
      }),
    ),
    devicesOmitted: Type.Integer({ minimum: 0 }),
  }),
  /** Rollouts under way in the verified state, newest first, at most opsStatusRolloutsMax. */
  rollouts: Type.Array(StatusRolloutSchema),
});

export const HistoryOutputSchema = Obj({
  chainId: Type.String(),
  node: Type.String(),
  verified: VerifiedTipSchema,
  target: Type.String(),
  entries: Type.Array(
    Obj({
      height: Height,
      timeMs: Type.Integer(),
      time: Time,
      type: Type.Union([Type.Literal('release'), Type.Literal('attest')]),
      version: Type.Integer(),
      sha256: Hex64,
      size: Type.Integer({ minimum: 0 }),
      mediaType: Nullable(Type.String()),
      txId: Hex64,
      signers: Type.Array(SignerSchema),
      current: Type.Boolean(),
      appliedBy: DeviceListSchema,
      failedBy: DeviceListSchema,
    }),
  ),
});

export const ShowOutputSchema = Obj({
  chainId: Type.String(),
  node: Type.String(),
  verified: VerifiedTipSchema,
  target: Type.String(),
  version: Type.Integer(),
  height: Height,
  type: Type.Union([Type.Literal('release'), Type.Literal('attest')]),
  sha256: Hex64,
  size: Type.Integer({ minimum: 0 }),
  mediaType: Nullable(Type.String()),
  from: Type.String({
    description:
      'whose copy was read (a validator URL, inline in the release, or a config server); checked against sha256',
  }),
  encoding: Type.Union([Type.Literal('utf8'), Type.Literal('base64')]),
  content: Type.String(),
});

const DiffSideSchema = Obj({ version: Type.Integer(), height: Height, sha256: Hex64, size: Type.Integer() });

export const DiffOutputSchema = Obj({
  chainId: Type.String(),
  node: Type.String(),
  verified: VerifiedTipSchema,
  target: Type.String(),
  from: DiffSideSchema,
  to: DiffSideSchema,
  identical: Type.Boolean(),
  /** Why no line diff is given (a binary side), else null. */
  binary: Nullable(Type.String()),
  hunks: Type.Array(
    Obj({
      oldStart: Type.Integer(),
      oldLines: Type.Integer(),
      newStart: Type.Integer(),
      newLines: Type.Integer(),
      lines: Type.Array(Type.String()),
    }),
  ),
  text: Type.String({ description: 'the unified diff' }),
});

export const AuditOutputSchema = Obj({
  chainId: Type.String(),
  node: Type.String(),
  verified: VerifiedTipSchema,
  since: Time,
  entries: Type.Array(
    Obj({
      time: Time,
      timeMs: Type.Integer(),
      height: Height,
      index: Type.Integer({ minimum: 0 }),
      txId: Hex64,
      type: Type.String(),
      subject: Type.String(),
      detail: Type.String(),
      signers: Type.Array(SignerSchema),
    }),
  ),
  omitted: Type.Integer({ minimum: 0, description: 'matching transactions left out by --limit' }),
  heartbeatsSkipped: Type.Integer({
    minimum: 0,
    description: 'heartbeats not listed (without --heartbeats)',
  }),
});

export const ExportOutputSchema = Obj({
  file: Type.String(),
  node: Type.String(),
  chainId: Type.String(),
  tipHeight: Height,
  transactions: Type.Integer({ minimum: 0 }),
  bytes: Type.Integer({ minimum: 0 }),
});

export const VerifyChainOutputSchema = Obj({
  ok: Type.Boolean(),
  file: Type.String(),
  chainId: Nullable(Type.String()),
  tipHeight: Nullable(Height),
  transactions: Nullable(Type.Integer({ minimum: 0 })),
  failure: Nullable(
    Obj({ height: Nullable(Height), line: Type.Integer({ minimum: 1 }), reason: Type.String() }),
  ),
});

export type DevicesOutput = Static<typeof DevicesOutputSchema>;
export type StatusOutput = Static<typeof StatusOutputSchema>;
export type HistoryOutput = Static<typeof HistoryOutputSchema>;
export type ShowOutput = Static<typeof ShowOutputSchema>;
export type DiffOutput = Static<typeof DiffOutputSchema>;
export type AuditOutput = Static<typeof AuditOutputSchema>;
export type ExportOutput = Static<typeof ExportOutputSchema>;
export type VerifyChainOutput = Static<typeof VerifyChainOutputSchema>;
export type ErrorOutput = Static<typeof ErrorOutputSchema>;
