/**
 * Image generation benchmark (issue: onnx-image): seconds per image and per UNet step at 256² and 512²,
 * and the pipeline's own overhead (everything outside ONNX session.run: scheduler math, tensor
 * conversion, PNG) as a fraction of the total. Two generated pipelines: the tiny test one, and a wider
 * one whose UNet cost is closer in proportion to a real export.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppConfig } from '../../src/config/app-config.js';
import { backendConfig, modelConfig } from '../../src/config/config-defaults.js';
import { LIMIT_DEFAULTS } from '../../src/config/limits.js';
import { OnnxImageProvider } from '../../src/providers/onnx-image/onnx-image.provider.js';
import { writeTinyPipeline, type TinyPipelineOptions } from '../../src/demo/tiny-image-pipeline.js';
import { fixed, median, table } from './bench-util.js';

const PIPELINES: { name: string; opts: TinyPipelineOptions }[] = [
  { name: 'tiny (test) LCM, 8 ch', opts: { scheduler: 'lcm' } },
  { name: 'wide LCM, 64 ch, hidden 256', opts: { scheduler: 'lcm', channels: 64, hiddenSize: 256, seed: 3 } },
  { name: 'SD-width LCM, 320 ch, hidden 768', opts: { scheduler: 'lcm', channels: 320, hiddenSize: 768, seed: 5 } },
];
const SIZES = [256, 512];
const STEPS = 4;
const RUNS = 5;

export async function runImageBench(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'mp-image-bench-'));
  const rows: (string | number)[][] = [];
  for (const [i, pipeline] of PIPELINES.entries()) {
    const path = writeTinyPipeline(join(dir, `p${i}`), pipeline.opts);
    const backend = backendConfig('bench-image', 'onnx-image', [modelConfig('img', path)]);
    const provider = new OnnxImageProvider(backend, { baseDir: dir, limits: LIMIT_DEFAULTS } as AppConfig);
    await provider.init();
    await provider.load('img');
    for (const size of SIZES) {
      const req = { model: 'img', prompt: 'a lighthouse at dusk', size: `${size}x${size}`, steps: STEPS, seed: 42 };
      await provider.generateWithTimings('img', req, new AbortController().signal); // warm-up
      const perImage: number[] = [];
      const perStep: number[] = [];
      const overhead: number[] = [];
      const png: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const { timings: t } = await provider.generateWithTimings(
          'img',
          { ...req, seed: 42 + r },
          new AbortController().signal,
        );
        const inOnnx = t.textEncoderSeconds + t.unetSeconds + t.vaeDecoderSeconds;
        const work = t.totalSeconds - t.queueSeconds - t.loadSeconds;
        perImage.push(t.secondsPerImage);
        perStep.push(t.secondsPerUnetStep);
        overhead.push((work - inOnnx) / work);
        png.push(t.pngSeconds / work);
      }
      rows.push([
        pipeline.name,
        `${size}×${size}`,
        STEPS,
        fixed(median(perImage)),
        fixed(median(perStep) * 1000, 2),
        `${fixed(median(overhead) * 100, 1)}%`,
        `${fixed(median(png) * 100, 1)}%`,
      ]);
    }
    await provider.dispose();
  }
  return [
    `### Image generation (onnxruntime-node, CPU, median of ${RUNS})`,
    '',
    table(
      ['pipeline', 'size', 'steps', 's / image', 'ms / UNet step', 'overhead outside ONNX run', 'of which PNG'],
      rows,
    ),
  ].join('\n');
}
