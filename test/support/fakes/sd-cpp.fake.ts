/**
 * Fake stable-diffusion.cpp style server (A1111-compatible API, docs/real-servers.md):
 * `/sdapi/v1/options` names the checkpoint but says nothing about memory; `/sdapi/v1/txt2img`
 * answers `{images:[b64...], parameters, info}` with `info` a JSON string. Also tinyagentos's wrapper
 * `/health`: 503 `{status:"error", error}` until the model is loaded, then 200.
 */
import { type FakeServerControls, sendJson, startFakeHttp } from './fake-http.js';
import { TINY_PNG_B64 } from './images.js';

export interface FakeSdCpp extends FakeServerControls {
  setCheckpoint(name: string): void;
  /** What the tinyagentos wrapper's /health would say (the A1111 API itself cannot tell). */
  setModelLoaded(loaded: boolean): void;
}

export async function startFakeSdCpp(opts: { checkpoint?: string } = {}): Promise<FakeSdCpp> {
  let checkpoint = opts.checkpoint ?? 'sd-v1-5-pruned-emaonly.safetensors';
  let loaded = false;
  const server = await startFakeHttp(
    (req, res) => {
      const route = `${req.method} ${req.path}`;
      if (route === 'GET /sdapi/v1/options') {
        sendJson(res, 200, { sd_model_checkpoint: checkpoint, samples_format: 'png', CLIP_stop_at_last_layers: 1 });
        return true;
      }
      if (route === 'GET /health') {
        if (loaded) sendJson(res, 200, { status: 'ok', model: checkpoint, backend: 'stable-diffusion.cpp' });
        else sendJson(res, 503, { status: 'error', error: 'model not loaded' });
        return true;
      }
      if (route === 'POST /sdapi/v1/txt2img') {
        const body = (req.body ?? {}) as Record<string, unknown>;
        const batch = typeof body.batch_size === 'number' ? body.batch_size : 1;
        const seed = typeof body.seed === 'number' && body.seed >= 0 ? body.seed : 42;
        loaded = true;
        sendJson(res, 200, {
          images: Array.from({ length: batch }, () => TINY_PNG_B64),
          parameters: body,
          info: JSON.stringify({
            prompt: body.prompt,
            seed,
            width: body.width ?? 512,
            height: body.height ?? 512,
            sd_model_name: checkpoint,
          }),
        });
        return true;
      }
      return false;
    },
    (_req, res) => sendJson(res, 404, { detail: 'Not Found' }),
  );
  return Object.assign(server, {
    setCheckpoint: (name: string) => {
      checkpoint = name;
    },
    setModelLoaded: (v: boolean) => {
      loaded = v;
    },
  });
}
