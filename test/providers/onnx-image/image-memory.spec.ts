import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { ValidationFailedError } from '../../../src/common/errors.js';
import { machineMemoryBytes } from '../../../src/common/machine.js';
import {
  checkImageMemory,
  imageRequestBytes,
  readImageMemoryShape,
} from '../../../src/providers/onnx-image/image-memory.js';

const MB = 1024 * 1024;
const GB = 1024 * MB;

function exportWith(files: Record<string, object>): string {
  const root = mkdtempSync(join(tmpdir(), 'mp-image-memory-'));
  for (const [path, value] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), JSON.stringify(value));
  }
  return root;
}

// The configs diffusers writes for Stable Diffusion 1.5 (the fields the estimate reads).
const SD15 = {
  'vae_decoder/config.json': { block_out_channels: [128, 256, 512, 512] },
  'unet/config.json': {
    attention_head_dim: 8,
    down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  },
};

describe('image memory estimate', () => {
  it('reads the VAE width and full-resolution attention heads of a real SD export', () => {
    expect(readImageMemoryShape(exportWith(SD15))).toEqual({ vaeChannels: 128, fullResAttentionHeads: 8 });
  });

  it('a UNet whose first block has no attention costs no attention term', () => {
    const root = exportWith({
      'vae_decoder/config.json': { block_out_channels: [8, 8] },
      'unet/config.json': { down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D'] },
    });
    expect(readImageMemoryShape(root)).toEqual({ vaeChannels: 8, fullResAttentionHeads: 0 });
  });

  it("without a budget, the machine's memory bounds a request: SD at 8192² (70 TB of attention) never starts", () => {
    const shape = readImageMemoryShape(exportWith(SD15));
    const need = imageRequestBytes({ width: 8192, height: 8192, n: 1 }, shape);
    expect(machineMemoryBytes()).toBeGreaterThan(0);
    expect(machineMemoryBytes()).toBeLessThanOrEqual(totalmem());
    expect(machineMemoryBytes()).toBeLessThan(need);
    expect(() =>
      checkImageMemory(
        { width: 8192, height: 8192, n: 1 },
        { shape, modelBytes: 0, budgetBytes: machineMemoryBytes(), budgetName: "this machine's memory" },
      ),
    ).toThrow(/this machine's memory/);
  });

  it('an export without config files is assumed to be SD (the costly case)', () => {
    expect(readImageMemoryShape(exportWith({}))).toEqual({ vaeChannels: 128, fullResAttentionHeads: 8 });
  });

  it('SD at 1024² is dominated by attention over 16k latent positions; at 512² by far less', () => {
    const shape = readImageMemoryShape(exportWith(SD15));
    const big = imageRequestBytes({ width: 1024, height: 1024, n: 1 }, shape);
    const small = imageRequestBytes({ width: 512, height: 512, n: 1 }, shape);
    expect(big / GB).toBeGreaterThan(16);
    expect(small / GB).toBeLessThan(1.2);
    // Quadratic in the area: 4× the pixels, about 16× the memory.
    expect(big / small).toBeGreaterThan(12);
  });

  it('refuses past the budget naming size, or n when one image would fit', () => {
    const shape = { vaeChannels: 128, fullResAttentionHeads: 0 };
    // 1 GB of weights; 1024² needs 2.02 GB of VAE maps plus 7 MB per kept image: one fits 3.25 GB, four do not.
    const memory = { shape, modelBytes: 1 * GB, budgetBytes: 3_250_000_000, budgetName: 'the budget' };
    expect(() => checkImageMemory({ width: 1024, height: 1024, n: 1 }, memory)).not.toThrow();
    const field = (req: { width: number; height: number; n: number }): string | undefined => {
      try {
        checkImageMemory(req, memory);
        return undefined;
      } catch (err) {
        expect(err).toBeInstanceOf(ValidationFailedError);
        return (err as ValidationFailedError).issues[0]?.field;
      }
    };
    expect(field({ width: 2048, height: 2048, n: 1 })).toBe('size');
    expect(field({ width: 1024, height: 1024, n: 4 })).toBe('n');
  });
});
