import { join } from 'node:path';

export const TEST_MODELS_DIR = join(process.cwd(), 'data', 'test-models');
