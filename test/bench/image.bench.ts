/**
 * Image generation benchmark (issues 6 and 14): seconds per image and per UNet step at 256² and 512², and the
 * pipeline's own overhead (everything outside ONNX session.run: scheduler math, tensor conversion, PNG) as a
 * fraction of (a) one request's latency and (b) the model's serial turn, which bounds throughput now that PNG
 * encoding runs after the turn. Then back-to-back vs two concurrent clients (same run: the overlap's gain),
 * and /health/live latency while two 512² images generate through the real app.
 */
import { mkdtempSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppConfig } from '../../src/config/app-config.js';
import { backendConfig, modelConfig } from '../../src/config/config-defaults.js';
import { LIMIT_DEFAULTS } from '../../src/config/limits.js';
import { OnnxImageProvider } from '../../src/providers/onnx-image/onnx-image.provider.js';
import { writeTinyPipeline, type TinyPipelineOptions } from '../../src/demo/tiny-image-pipeline.js';
import type { ImageGenerationTimings } from '../../src/providers/onnx-image/pipeline.js';
import { availableCores } from '../../src/common/machine.js';
import { startModelplane } from './app-runner.js';
import { fixed, median, percentile, pingLiveness, table } from './bench-util.js';

const PIPELINES: { name: string; opts: TinyPipelineOptions }[] = [
  { name: 'tiny (test) LCM, 8 ch', opts: { scheduler: 'lcm' } },
  { name: 'wide LCM, 64 ch, hidden 256', opts: { scheduler: 'lcm', channels: 64, hiddenSize: 256, seed: 3 } },
  { name: 'SD-width LCM, 320 ch, hidden 768', opts: { scheduler: 'lcm', channels: 320, hiddenSize: 768, seed: 5 } },
];
const SIZES = [256, 512];
const STEPS = 4;
const RUNS = 5;

const SD_WIDTH = PIPELINES[2]!;

const TURN_PARTS = [
  'turn',
  'ONNX run',
  'scheduler',
  'VAE output to PNG filter',
  'other in pipeline',
  'hand-off',
] as const;
type TurnParts = Record<(typeof TURN_PARTS)[number], number>;

/** The model's turn split into milliseconds: ONNX runs, the pipeline's own JS, and the hop to its thread and back. */
function turnParts(t: ImageGenerationTimings): TurnParts {
  const onnx = t.textEncoderSeconds + t.unetSeconds + t.vaeDecoderSeconds;
  const ms = (seconds: number): number => seconds * 1000;
  return {
    turn: ms(t.turnSeconds),
    'ONNX run': ms(onnx),
    scheduler: ms(t.schedulerSeconds),
    'VAE output to PNG filter': ms(t.postprocessSeconds),
    'other in pipeline': ms(t.pipelineSeconds - onnx - t.schedulerSeconds - t.postprocessSeconds),
    'hand-off': ms(t.turnSeconds - t.pipelineSeconds),
  };
}
const never = (): AbortSignal => new AbortController().signal;

export async function runImageBench(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'mp-image-bench-'));
  const rows: (string | number)[][] = [];
  let overlap = '';
  const turnRows: (string | number)[][] = [];
  for (const [i, pipeline] of PIPELINES.entries()) {
    const path = writeTinyPipeline(join(dir, `p${i}`), pipeline.opts);
    const backend = backendConfig('bench-image', 'onnx-image', [modelConfig('img', path)]);
    const provider = new OnnxImageProvider(backend, {
      baseDir: dir,
      limits: LIMIT_DEFAULTS,
      eviction: { memoryBudgetMb: 0 },
    } as AppConfig);
    await provider.init();
    await provider.load('img');
    for (const size of SIZES) {
      const req = { model: 'img', prompt: 'a lighthouse at dusk', size: `${size}x${size}`, steps: STEPS, seed: 42 };
      await provider.generateWithTimings('img', req, never()); // warm-up
      const perImage: number[] = [];
      const perStep: number[] = [];
      const overhead: number[] = [];
      const turnOverhead: number[] = [];
      const png: number[] = [];
      const parts: TurnParts[] = [];
      for (let r = 0; r < RUNS; r++) {
        const { timings: t } = await provider.generateWithTimings('img', { ...req, seed: 42 + r }, never());
        const inOnnx = t.textEncoderSeconds + t.unetSeconds + t.vaeDecoderSeconds;
        const work = t.totalSeconds - t.queueSeconds - t.loadSeconds;
        perImage.push(t.secondsPerImage);
        perStep.push(t.secondsPerUnetStep);
        overhead.push((work - inOnnx) / work);
        turnOverhead.push((t.turnSeconds - inOnnx) / t.turnSeconds);
        png.push(t.pngSeconds / work);
        parts.push(turnParts(t));
      }
      if (pipeline === SD_WIDTH)
        turnRows.push([`${size}×${size}`, ...TURN_PARTS.map((k) => fixed(median(parts.map((p) => p[k])), 1))]);
      rows.push([
        pipeline.name,
        `${size}×${size}`,
        STEPS,
        fixed(median(perImage)),
        fixed(median(perStep) * 1000, 2),
        `${fixed(median(overhead) * 100, 1)}%`,
        `${fixed(median(png) * 100, 1)}%`,
        `${fixed(median(turnOverhead) * 100, 1)}%`,
      ]);
    }
    if (pipeline === SD_WIDTH) overlap = await sequentialVsConcurrent(provider);
    await provider.dispose();
  }
  return [
    `### Image generation (onnxruntime-node, CPU, ${availableCores()} cores, median of ${RUNS})`,
    '',
    table(
      [
        'pipeline',
        'size',
        'steps',
        's / image',
        'ms / UNet step',
        'overhead outside ONNX run (request)',
        'of which PNG',
        'overhead in the model turn',
      ],
      rows,
    ),
    '',
    `#### Where the ${SD_WIDTH.name} turn goes (ms, median of ${RUNS})`,
    '',
    table(['size', ...TURN_PARTS], turnRows),
    '',
    overlap,
    '',
    await livenessDuringImages(join(dir, 'p2')),
  ].join('\n');
}

/**
 * Same requests back to back (each waits for its PNG before the next starts: nothing to overlap) and from
 * two clients at once (the next request denoises while the previous one's PNG encodes), interleaved.
 */
async function sequentialVsConcurrent(provider: OnnxImageProvider): Promise<string> {
  const IMAGES = 8;
  const req = (seed: number) => ({ model: 'img', prompt: 'a lighthouse', size: '512x512', steps: STEPS, seed });
  const sequential: number[] = [];
  const concurrent: number[] = [];
  for (let round = 0; round < 3; round++) {
    let t0 = performance.now();
    for (let i = 0; i < IMAGES; i++) await provider.generateWithTimings('img', req(i), never());
    sequential.push(IMAGES / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    await Promise.all(
      [0, 1].map(async (client) => {
        for (let i = client; i < IMAGES; i += 2) await provider.generateWithTimings('img', req(i), never());
      }),
    );
    concurrent.push(IMAGES / ((performance.now() - t0) / 1000));
  }
  const seq = median(sequential);
  const con = median(concurrent);
  return (
    `### SD-width LCM 512², ${IMAGES} images: one client vs two (PNG overlaps the next denoising), median of 3\n\n` +
    table(
      ['clients', 'images / s', 'vs one client'],
      [
        ['1 (back to back)', fixed(seq, 2), '1.00×'],
        ['2 (concurrent)', fixed(con, 2), `${fixed(con / seq, 2)}×`],
      ],
    )
  );
}

/** Only the liveness figure below (about a minute, instead of the whole image benchmark). */
export async function runImageLivenessBench(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'mp-image-liveness-'));
  return livenessDuringImages(writeTinyPipeline(join(dir, 'sd'), SD_WIDTH.opts));
}

/** GET /health/live every 10 ms while two clients each generate 512² images through the real app, run as its own process. */
async function livenessDuringImages(path: string): Promise<string> {
  const ROUNDS = 5;
  // Its own process: the 700 KB JSON answers this client reads must not run on the server's event loop.
  const app = await startModelplane({
    backends: [{ name: 'img', type: 'onnx-image', models: [{ id: 'img', path, preload: true }] }],
  });
  let pings: number[] = [];
  let seconds = 0;
  const liveness = pingLiveness(app.url);
  try {
    const started = performance.now();
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(
        [1, 2].map(async (seed) => {
          const res = await fetch(`${app.url}/v1/images/generations`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'img', prompt: 'a fox', size: '512x512', steps: STEPS, seed }),
          });
          if (!res.ok) throw new Error(`image request failed: ${res.status} ${await res.text()}`);
          await res.text();
        }),
      );
    }
    seconds = (performance.now() - started) / 1000;
  } finally {
    pings = await liveness.stop();
    await app.stop();
  }
  return (
    `### /health/live while two 512² images generate (SD-width LCM, ${STEPS} steps, ${ROUNDS} rounds of 2, ` +
    `ping every 10 ms)\n\n` +
    table(
      ['images', 'wall s', 'pings', 'p50 ms', 'p99 ms', 'max ms'],
      [
        [
          ROUNDS * 2,
          fixed(seconds, 2),
          pings.length,
          fixed(percentile(pings, 50), 1),
          fixed(percentile(pings, 99), 1),
          fixed(pings.at(-1) ?? NaN, 1),
        ],
      ],
    ) +
    '\n\nGoal: p99 < 10 ms.'
  );
}
