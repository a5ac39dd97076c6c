import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDemoModels } from '../../src/demo/demo-models.js';

describe('writeDemoModels (npm run models:generate)', () => {
  it('writes the chat and embedding GGUF files and the image pipeline under <folder>/demo', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mp-models-'));
    try {
      const paths = writeDemoModels(dir);
      expect(paths).toEqual({
        chat: join(dir, 'demo', 'demo-chat.gguf'),
        embed: join(dir, 'demo', 'demo-embed.gguf'),
        image: join(dir, 'demo', 'demo-image'),
      });
      for (const file of [paths.chat, paths.embed]) {
        expect(readFileSync(file).subarray(0, 4).toString('latin1')).toBe('GGUF');
      }
      expect(existsSync(join(paths.image, 'model_index.json'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
