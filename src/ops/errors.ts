/**
 * Operating errors of the operator commands: what was wrong and what to do. A chain or content
 * that fails verification is a ChainCheckError or a CONTENT_INVALID OpsError; the commands exit
 * with a different status for those (1) than for errors that stopped them from checking (2).
 */
import { ConfigChainError } from '../errors.ts';

export type OpsErrorCode =
  | 'USAGE'
  | 'GENESIS_MISSING'
  | 'NETWORK_MISSING'
  | 'NODE_UNREACHABLE'
  | 'NODE_ERROR'
  | 'NOT_FOUND'
  | 'CONTENT_UNAVAILABLE'
  | 'CONTENT_INVALID'
  | 'EXPORT_INVALID'
  | 'TOO_LARGE'
  | 'IO';

export class OpsError extends ConfigChainError<OpsErrorCode, Readonly<Record<string, unknown>>> {
  constructor(code: OpsErrorCode, message: string, data: Readonly<Record<string, unknown>> = {}) {
    super(code, message, data);
    this.name = 'OpsError';
  }
}

/** True for failures that mean "what I was shown does not check out", as opposed to "I could not check". */
export function isVerificationFailure(code: string): boolean {
  return code === 'CHAIN_INVALID' || code === 'CONTENT_INVALID' || code === 'EXPORT_INVALID';
}
