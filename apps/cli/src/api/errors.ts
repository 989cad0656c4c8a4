import { FerryError, ValidationError, type Problem } from '@ferry/core';
import { EXIT, ExitError } from '../exit-error.js';

/**
 * How an error crosses the API: one JSON body, `{ error: ApiErrorBody }`, whose `exit` is the code
 * the CLI exits with, as it would have without the API. `kind` says how the CLI raises it again:
 * `ferry` as a FerryError (printed `CODE: message`), `exit` as an ExitError (printed as is), `api`
 * for the API's own refusals (401, 403; 404 of a route).
 */
export interface ApiErrorBody {
  kind: 'ferry' | 'exit' | 'api';
  code: string;
  message: string;
  exit: number;
  problems?: Problem[];
  requestId?: string;
}

/** The API refused a request itself: who asked, or what (401, 403, 404). */
export class ApiRefusal extends Error {
  override name = 'ApiRefusal';
  constructor(
    readonly status: 401 | 403 | 404,
    readonly code: string,
    message: string,
    /** A token's id, when a 401 is about one (for the audit log). */
    readonly tokenId?: string,
  ) {
    super(message);
  }
}

/** An error as the API answers it: its HTTP status and body (unknown errors hide their text; the server logs it). */
export function errorReply(e: unknown, requestId: string): { status: number; body: ApiErrorBody; internal?: true } {
  if (e instanceof ApiRefusal) return { status: e.status, body: { kind: 'api', code: e.code, message: e.message, exit: e.status === 404 ? EXIT.badInput : EXIT.denied, requestId } };
  if (e instanceof ValidationError) return { status: 400, body: { kind: 'ferry', code: e.code, message: e.message, exit: EXIT.badInput, problems: e.problems, requestId } };
  if (e instanceof FerryError) {
    const bad = e.code === 'INVALID_INPUT';
    return { status: bad ? 400 : 409, body: { kind: 'ferry', code: e.code, message: e.message, exit: bad ? EXIT.badInput : EXIT.failed, requestId } };
  }
  if (e instanceof ExitError) {
    const bad = e.exitCode === EXIT.badInput;
    return { status: bad ? 400 : 409, body: { kind: 'exit', code: bad ? 'BAD_INPUT' : 'FAILED', message: e.message, exit: e.exitCode, requestId } };
  }
  // Fastify's own (a body that is not JSON, too large, of another type): their status, their code.
  const f = e as { statusCode?: unknown; code?: unknown; message?: unknown };
  if (typeof f.statusCode === 'number' && f.statusCode >= 400 && f.statusCode < 500) {
    return { status: f.statusCode, body: { kind: 'ferry', code: 'INVALID_INPUT', message: `${typeof f.code === 'string' ? `${f.code}: ` : ''}${String(f.message)}`, exit: EXIT.badInput, requestId } };
  }
  return { status: 500, body: { kind: 'api', code: 'INTERNAL', message: `internal error of ferry's API (request ${requestId}: see its log)`, exit: EXIT.failed, requestId }, internal: true };
}

/** The error a client raises for an API error body: as the CLI would have raised it without the API. */
export function errorFromReply(status: number, body: Partial<ApiErrorBody> | undefined): Error {
  const message = body?.message ?? `ferry's API answered ${status}`;
  const req = body?.requestId ? ` (request ${body.requestId})` : '';
  if (status === 401 || status === 403) return new ExitError(EXIT.denied, `API ${status === 401 ? 'refused the token' : 'denied the request'}: ${message}${req}`);
  if (body?.kind === 'ferry' && body.code) return new FerryError(body.code, message);
  if (body?.kind === 'exit') return new ExitError(body.exit ?? EXIT.failed, message);
  return new ExitError(body?.exit ?? (status < 500 ? EXIT.badInput : EXIT.failed), `API: ${status}: ${message}${req}`);
}
