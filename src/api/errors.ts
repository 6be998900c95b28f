/**
 * The one catalogue of HTTP API errors (fastify's lib/errors.js pattern): each has a stable code
 * that clients may switch on, an HTTP status, and a message that says what was wrong and what to
 * do. Handlers throw ApiError; the server's error handler turns it (and fastify's own parse and
 * schema errors) into the JSON body { statusCode, code, error, message }.
 */
import { ConfigChainError } from '../errors.ts';

export const ApiErrorCode = {
  badJson: 'BAD_JSON',
  badRequest: 'BAD_REQUEST',
  bodyTooLarge: 'BODY_TOO_LARGE',
  unsupportedMediaType: 'UNSUPPORTED_MEDIA_TYPE',
  routeNotFound: 'ROUTE_NOT_FOUND',
  blockNotFound: 'BLOCK_NOT_FOUND',
  txNotFound: 'TX_NOT_FOUND',
  targetNotFound: 'TARGET_NOT_FOUND',
  deviceNotFound: 'DEVICE_NOT_FOUND',
  rolloutNotFound: 'ROLLOUT_NOT_FOUND',
  contentNotFound: 'CONTENT_NOT_FOUND',
  deviceUnauthorized: 'DEVICE_UNAUTHORIZED',
  deviceForbidden: 'DEVICE_FORBIDDEN',
  unknownNodes: 'UNKNOWN_NODES',
  notReady: 'NOT_READY',
  timeout: 'TIMEOUT',
  unavailable: 'UNAVAILABLE',
  internal: 'INTERNAL',
} as const;

export type ApiErrorCode = (typeof ApiErrorCode)[keyof typeof ApiErrorCode];

const STATUS: Readonly<Record<ApiErrorCode, number>> = {
  BAD_JSON: 400,
  BAD_REQUEST: 400,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  ROUTE_NOT_FOUND: 404,
  BLOCK_NOT_FOUND: 404,
  TX_NOT_FOUND: 404,
  TARGET_NOT_FOUND: 404,
  DEVICE_NOT_FOUND: 404,
  ROLLOUT_NOT_FOUND: 404,
  CONTENT_NOT_FOUND: 404,
  DEVICE_UNAUTHORIZED: 401,
  DEVICE_FORBIDDEN: 403,
  UNKNOWN_NODES: 400,
  NOT_READY: 503,
  TIMEOUT: 503,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

const REASON: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export class ApiError extends ConfigChainError<ApiErrorCode> {
  readonly statusCode: number;

  constructor(code: ApiErrorCode, message: string, data: object = {}) {
    super(code, message, data);
    this.name = 'ApiError';
    this.statusCode = STATUS[code];
  }
}

/** The JSON body of every v1 error response. */
export interface ErrorBody {
  readonly statusCode: number;
  readonly code: string;
  readonly error: string;
  readonly message: string;
}

export function errorBody(statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: REASON[statusCode] ?? 'Error', message };
}

/**
 * Translates fastify's own request errors (body parsing, content type, size, schema) into the
 * catalogue, with a message that says what to send instead. Anything else is internal.
 */
export function fromFastifyError(err: {
  code?: string;
  statusCode?: number;
  message: string;
  validation?: unknown;
  validationContext?: string;
}): ApiError {
  if (err instanceof ApiError) return err;
  if (err.validation !== undefined) {
    const where = err.validationContext ?? 'request';
    return new ApiError(
      ApiErrorCode.badRequest,
      `invalid ${where}: ${err.message}. See GET /docs for the expected shape.`,
    );
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ApiError(
        ApiErrorCode.badJson,
        `the request body is not valid JSON (${err.message}); send a JSON document with Content-Type: application/json`,
      );
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(
        ApiErrorCode.bodyTooLarge,
        'the request body is larger than this server accepts; send a smaller body',
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new ApiError(
        ApiErrorCode.unsupportedMediaType,
        `unsupported Content-Type (${err.message}); send the body as JSON with Content-Type: application/json`,
      );
    default:
      break;
  }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    return new ApiError(ApiErrorCode.badRequest, `bad request: ${err.message}`);
  }
  return new ApiError(ApiErrorCode.internal, 'internal error; the node logged the details');
}
