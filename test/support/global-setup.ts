/** Runs once before all test files: generates the tiny test models (idempotent, cached in data/test-models). */
export default async function globalSetup(): Promise<void> {
  const { ensureTestModels } = await import('./test-models.js');
  await ensureTestModels();
}
