/**
 * A small error hierarchy: every error cogd raises on purpose has a stable `code` and, where the
 * user can do something about it, a `hint` saying what.
 */
export class CogdError extends Error {
  readonly code: string;
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CogdError';
    this.code = code;
    this.hint = options.hint;
  }
}

/** Bad command-line usage: exit code 2. */
export class UsageError extends CogdError {
  constructor(message: string, hint?: string) {
    super('USAGE', message, hint === undefined ? {} : { hint });
    this.name = 'UsageError';
  }
}

/**
 * A failure that retrying cannot fix (missing object, not a TIFF, access denied).
 * Throwing it fails a job without using up its retries.
 */
export class PermanentError extends CogdError {
  constructor(code: string, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'PermanentError';
  }
}

export function isPermanent(error: unknown): boolean {
  return error instanceof PermanentError;
}

/** One line for a user: the message, then the hint if there is one. */
export function describeError(error: unknown): string {
  if (error instanceof CogdError) {
    return error.hint === undefined ? error.message : `${error.message} (${error.hint})`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
