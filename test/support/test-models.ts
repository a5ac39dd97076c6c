/** Paths of the generated test models; generators are filled in by the LLM and image providers. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const TEST_MODELS_DIR = join(process.cwd(), 'data', 'test-models');

export async function ensureTestModels(): Promise<void> {
  mkdirSync(TEST_MODELS_DIR, { recursive: true });
}
