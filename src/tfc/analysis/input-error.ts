/** Errors about one of analyze's input captures, saying which one (its role and path) exactly once. */

export class AnalysisInputError extends Error {
  override name = 'AnalysisInputError';
}

/** `err`, thrown while reading the capture at `path`, as an error that names the capture. */
export function readError(role: string, path: string, err: unknown): Error {
  if (err instanceof AnalysisInputError) return err;
  return new AnalysisInputError(`${role} ${path}: ${(err as Error).message}`);
}
