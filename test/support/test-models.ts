/** Generates the tiny test models (idempotent, atomic writes so parallel workers are safe; cached under data/test-models). Call from beforeAll. */
import { mkdirSync } from 'node:fs';
import { ensureImageTestModels } from './image-test-models.js';
import { ensureLlmTestModels } from './llm-test-models.js';
import { TEST_MODELS_DIR } from './test-paths.js';

export async function ensureTestModels(): Promise<void> {
  mkdirSync(TEST_MODELS_DIR, { recursive: true });
  await ensureLlmTestModels();
  await ensureImageTestModels();
}
