/** Runs every step in order even when some fail; returns the errors (close() must not stop halfway). */
export async function runEvery(steps: Array<() => unknown>): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      errors.push(error);
    }
  }
  return errors;
}

/** Like runEvery, then throws one AggregateError if anything failed. */
export async function closeAll(steps: Array<() => unknown>, what: string): Promise<void> {
  const errors = await runEvery(steps);
  if (errors.length > 0) throw new AggregateError(errors, `${what} did not shut down cleanly`);
}
