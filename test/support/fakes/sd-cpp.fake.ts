/**
 * Fake stable-diffusion.cpp `sd-server`. Every behaviour is read from leejet/stable-diffusion.cpp
 * `examples/server/` (commit 97d2990):
 * - `main.cpp`: the model is loaded (`new_sd_ctx`) BEFORE `svr.listen`, and a failed load exits; so
 *   while it loads nothing listens (connection refused), and there is no /health route. cpp-httplib
 *   answers an unknown route 404 with an empty body.
 * - `routes_sdapi.cpp` `/sdapi/v1/options`: `{samples_format:"png", sd_model_checkpoint}` where the
 *   checkpoint is the model file's STEM (no extension); `/sdapi/v1/sd-models` lists that one model.
 * - `routes_sdapi.cpp` `sdapi_any2img` (`/sdapi/v1/txt2img`): empty body → 400 `{"error":"empty body"}`;
 *   `build_sdapi_img_gen_request` → 400 `{"error":"width and height must be positive"}` /
 *   `{"error":"prompt required"}`; unparsable JSON → 500 `{"error":"server_error","message"}`; no image →
 *   500 `{"error":"generate_image returned no results"}`. `images` are base64 PNGs, `parameters` echoes
 *   the request, `info` is a JSON STRING (`prepare_info_field`) with the resolved seed and `all_seeds`.
 * - `examples/common/common.cpp` `SDGenerationParams::resolve` (strict for the server): seed < 0 becomes
 *   a random seed; batch_count is clamped to 1..8 and steps to 1..100.
 * - `routes_openai.cpp` `/v1/models`: always `{data:[{id:"sd-cpp-local", object:"model", owned_by:"local"}]}`.
 * Generations hold `sd_ctx_mutex`, so they run one at a time; other routes keep answering.
 */
import { type FakeServerControls, sendJson, sendText, startFakeHttp } from './fake-http.js';
import { pngB64 } from './images.js';

export interface FakeSdCpp extends FakeServerControls {
  /** What `/sdapi/v1/options` reports: the stem of the model file. */
  readonly checkpoint: string;
  /** The next generate produces no image (500 "generate_image returned no results"). */
  failNextGeneration(): void;
}

function stem(file: string): string {
  const base = file.split(/[\\/]/).pop() ?? file;
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/** `opts.model` is the model FILE the server was started with (`-m`), e.g. `sd-v1-5-pruned-emaonly.safetensors`. */
export async function startFakeSdCpp(opts: { model?: string } = {}): Promise<FakeSdCpp> {
  const modelFile = opts.model ?? 'sd-v1-5-pruned-emaonly.safetensors';
  const checkpoint = stem(modelFile);
  let failNext = false;
  let nextRandomSeed = 1804289383; // glibc's first rand(): a plausible value, deterministic for tests

  const server = await startFakeHttp(
    (req, res) => {
      const route = `${req.method} ${req.path}`;
      if (route === 'GET /sdapi/v1/options') {
        sendJson(res, 200, { samples_format: 'png', sd_model_checkpoint: checkpoint });
        return true;
      }
      if (route === 'GET /sdapi/v1/sd-models') {
        sendJson(res, 200, [
          {
            title: checkpoint,
            model_name: checkpoint,
            filename: modelFile,
            hash: '8888888888',
            sha256: '8'.repeat(64),
            config: null,
          },
        ]);
        return true;
      }
      if (route === 'GET /v1/models') {
        sendJson(res, 200, { data: [{ id: 'sd-cpp-local', object: 'model', owned_by: 'local' }] });
        return true;
      }
      if (route === 'POST /sdapi/v1/txt2img') {
        if (req.rawBody.length === 0) {
          sendJson(res, 400, { error: 'empty body' });
          return true;
        }
        if (req.body === null) {
          sendJson(res, 500, { error: 'server_error', message: '[json.exception.parse_error.101] parse error' });
          return true;
        }
        const j = req.body as Record<string, unknown>;
        const num = (key: string, fallback: number): number => (typeof j[key] === 'number' ? j[key] : fallback);
        const width = num('width', 512);
        const height = num('height', 512);
        const prompt = typeof j.prompt === 'string' ? j.prompt : '';
        if (width <= 0 || height <= 0) {
          sendJson(res, 400, { error: 'width and height must be positive' });
          return true;
        }
        if (prompt === '') {
          sendJson(res, 400, { error: 'prompt required' });
          return true;
        }
        if (failNext) {
          failNext = false;
          sendJson(res, 500, { error: 'generate_image returned no results' });
          return true;
        }
        const requestedSeed = num('seed', -1);
        const seed = requestedSeed < 0 ? nextRandomSeed++ : requestedSeed;
        const batch = Math.min(8, Math.max(1, num('batch_size', 1)));
        const steps = Math.min(100, Math.max(1, num('steps', 20)));
        const negative = typeof j.negative_prompt === 'string' ? j.negative_prompt : '';
        const seeds = Array.from({ length: batch }, (_, i) => seed + i);
        const info: Record<string, unknown> = { prompt };
        if (negative !== '') info.negative_prompt = negative;
        Object.assign(info, {
          seed,
          cfg_scale: num('cfg_scale', 7),
          width,
          height,
          steps,
          sampler_name: 'euler_a',
          sd_model_name: modelFile,
          version: 'stable-diffusion.cpp',
          infotexts: seeds.map((s) => `${prompt}\nSteps: ${steps}, Seed: ${s}, Size: ${width}x${height}`),
          all_prompts: seeds.map(() => prompt),
          all_negative_prompts: seeds.map(() => negative),
          all_seeds: seeds,
        });
        sendJson(res, 200, {
          images: seeds.map(() => pngB64(width, height)),
          parameters: j,
          info: JSON.stringify(info),
        });
        return true;
      }
      return false;
    },
    (_req, res) => sendText(res, 404, ''),
  );
  return Object.assign(server, {
    checkpoint,
    failNextGeneration: () => {
      failNext = true;
    },
  });
}
