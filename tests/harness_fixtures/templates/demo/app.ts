// Fixture template with a region nested in another; inner markers are left out.
export function handler(code: string): string {
  // region handler
  const trimmed = code.trim();
  // region inner
  const upper = trimmed.toUpperCase();
  // endregion inner
  return upper;
  // endregion handler
}
