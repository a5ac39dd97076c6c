/**
 * Fake tinyagentos `rknn_sd_server`. Every behaviour below is read from the real server's source,
 * jaylfc/taOS `tinyagentos/services/rknn_sd_server.py` (commit a32743b, the version with idle
 * unload and `/admin/unload`; FastAPI + pydantic v2):
 * - `health()`: always 200, `pipeline_loaded`, `load_error`, `runtime` ("ez_rknn_async" unless the
 *   legacy wrapper is forced), `idle_seconds` (null until the pipeline was first loaded, then the time
 *   since the last load or generate, kept after an unload), `idle_unload_threshold_s` (600, null = off).
 * - `list_models()`: always lists the model, loaded or not.
 * - `admin_unload()`: `{ok:true, was_loaded}`.
 * - `generate()`: pydantic `GenerateRequest` validates first (422 `{detail:[...]}`); then the pipeline
 *   lazy-loads (a failure is 503 with the load error as `detail`), and only then n != 1 and the size are
 *   refused with 400. The size is split as HEIGHTxWIDTH (`height_s, width_s = body.size.split("x")`).
 *   The generate runs `_pipe(...)` on the event loop, so nothing else is answered until it ends.
 */
import { type FakeServerControls, type FakeRequest, sendJson, startFakeHttp } from './fake-http.js';
import { pngB64 } from './images.js';

export interface FakeRknnSdOptions {
  model?: string;
  pipelineLoaded?: boolean;
  /** Seconds since the last activity; defaults to 0 when the pipeline starts loaded, else null (never loaded). */
  idleSeconds?: number | null;
  /** null disables idle unload upstream. */
  idleUnloadThresholdS?: number | null;
}

export interface FakeRknnSd extends FakeServerControls {
  readonly model: string;
  setPipelineLoaded(loaded: boolean): void;
  pipelineLoaded(): boolean;
  /** The next lazy load fails: generate answers 503 and /health reports load_error. null clears it. */
  setLoadFailure(message: string | null): void;
  setIdleSeconds(seconds: number | null): void;
  /**
   * Generations hold the server (as `_pipe(...)` holds uvicorn's event loop): no request, /health
   * included, is answered until the returned function is called.
   */
  holdGenerations(): () => void;
  /** Width × height of the images generated so far, in order. */
  generated: { width: number; height: number }[];
}

type Issue = Record<string, unknown>;

/** pydantic v2 `int` (strict enough for JSON: a whole number, not a bool). */
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);

/** `GenerateRequest` validation, in pydantic v2's error shape (FastAPI puts the list under `detail`). */
function validate(body: unknown): Issue[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return [
      {
        type: 'model_attributes_type',
        loc: ['body'],
        msg: 'Input should be a valid dictionary or object to extract fields from',
        input: body,
      },
    ];
  }
  const b = body as Record<string, unknown>;
  const issues: Issue[] = [];
  const loc = (f: string): string[] => ['body', f];
  if (b.prompt === undefined) issues.push({ type: 'missing', loc: loc('prompt'), msg: 'Field required', input: b });
  else if (typeof b.prompt !== 'string')
    issues.push({ type: 'string_type', loc: loc('prompt'), msg: 'Input should be a valid string', input: b.prompt });
  if (b.n !== undefined && !isInt(b.n))
    issues.push({ type: 'int_type', loc: loc('n'), msg: 'Input should be a valid integer', input: b.n });
  if (b.size !== undefined && typeof b.size !== 'string')
    issues.push({ type: 'string_type', loc: loc('size'), msg: 'Input should be a valid string', input: b.size });
  if (
    b.response_format !== undefined &&
    !(typeof b.response_format === 'string' && /^(b64_json|url)$/.test(b.response_format))
  )
    issues.push({
      type: 'string_pattern_mismatch',
      loc: loc('response_format'),
      msg: "String should match pattern '^(b64_json|url)$'",
      input: b.response_format,
      ctx: { pattern: '^(b64_json|url)$' },
    });
  if (b.seed !== undefined && b.seed !== null && !isInt(b.seed))
    issues.push({ type: 'int_type', loc: loc('seed'), msg: 'Input should be a valid integer', input: b.seed });
  const bounded = (f: string, v: unknown, lo: number, hi: number, int: boolean): void => {
    if (v === undefined) return;
    if (typeof v !== 'number' || (int && !isInt(v)))
      issues.push({
        type: int ? 'int_type' : 'float_type',
        loc: loc(f),
        msg: `Input should be a valid ${int ? 'integer' : 'number'}`,
        input: v,
      });
    else if (v < lo)
      issues.push({
        type: 'greater_than_equal',
        loc: loc(f),
        msg: `Input should be greater than or equal to ${lo}`,
        input: v,
        ctx: { ge: lo },
      });
    else if (v > hi)
      issues.push({
        type: 'less_than_equal',
        loc: loc(f),
        msg: `Input should be less than or equal to ${hi}`,
        input: v,
        ctx: { le: hi },
      });
  };
  bounded('steps', b.steps, 1, 20, true);
  bounded('guidance_scale', b.guidance_scale, 0, 20, false);
  return issues;
}

/** Python `int()` on a str: optional sign and surrounding whitespace, digits. */
function pyInt(s: string): number | null {
  return /^\s*[+-]?\d+\s*$/.test(s) ? Number(s) : null;
}

export async function startFakeRknnSd(opts: FakeRknnSdOptions = {}): Promise<FakeRknnSd> {
  const model = opts.model ?? 'lcm-dreamshaper-v7-rknn';
  let loaded = opts.pipelineLoaded ?? false;
  let loadFailure: string | null = null;
  let loadError: string | null = null;
  let idleSeconds: number | null = opts.idleSeconds !== undefined ? opts.idleSeconds : loaded ? 0 : null;
  const threshold = opts.idleUnloadThresholdS === undefined ? 600 : opts.idleUnloadThresholdS;
  const created = Math.floor(Date.now() / 1000);
  let holding = false;
  let busy: Promise<void> = Promise.resolve();
  const releases: (() => void)[] = [];
  const generated: { width: number; height: number }[] = [];

  const generate = async (req: FakeRequest, res: Parameters<typeof sendJson>[0]): Promise<void> => {
    const issues = validate(req.body);
    if (issues.length > 0) {
      sendJson(res, 422, { detail: issues });
      return;
    }
    const body = req.body as Record<string, unknown>;
    if (!loaded) {
      if (loadFailure !== null) {
        // `_ensure_pipeline_sync` stores str(exc) in _load_error; the 503 detail is that string.
        loadError = loadFailure;
        sendJson(res, 503, { detail: loadFailure });
        return;
      }
      loaded = true;
      idleSeconds = 0;
    }
    const n = body.n ?? 1;
    if (n !== 1) {
      sendJson(res, 400, { detail: 'n > 1 not supported on this backend' });
      return;
    }
    const size = typeof body.size === 'string' ? body.size : '512x512';
    const parts = size.split('x');
    const [height, width] = parts.length === 2 ? parts.map(pyInt) : [null, null];
    if (height === null || height === undefined || width === null || width === undefined) {
      sendJson(res, 400, { detail: `invalid size: ${size}` });
      return;
    }
    if (holding) {
      // The pipeline call blocks the event loop: every other request waits behind it.
      busy = new Promise<void>((resolve) => releases.push(resolve));
      await busy;
    }
    idleSeconds = 0; // activity is stamped at the END of a generate
    generated.push({ width, height });
    const seed = isInt(body.seed) ? body.seed : 1234;
    sendJson(res, 200, {
      created: Math.floor(Date.now() / 1000),
      data: [{ b64_json: pngB64(width, height), revised_prompt: body.prompt }],
      model: 'lcm-dreamshaper-v7-rknn', // hard-coded upstream, whatever `model` was asked
      usage: { elapsed_seconds: 0.01, seed },
    });
  };

  const server = await startFakeHttp(
    async (req, res) => {
      const route = `${req.method} ${req.path}`;
      if (route !== 'POST /v1/images/generations') await busy;
      if (route === 'GET /health') {
        sendJson(res, 200, {
          status: 'ok',
          model,
          backend: 'rknn2',
          runtime: 'ez_rknn_async',
          pipeline_loaded: loaded,
          load_error: loadError,
          idle_seconds: idleSeconds === null ? null : Math.round(idleSeconds * 10) / 10,
          idle_unload_threshold_s: threshold,
        });
        return true;
      }
      if (route === 'GET /v1/models') {
        sendJson(res, 200, {
          data: [{ id: model, object: 'model', created, owned_by: 'tinyagentos' }],
          object: 'list',
        });
        return true;
      }
      if (route === 'POST /admin/unload') {
        const was = loaded;
        loaded = false;
        sendJson(res, 200, { ok: true, was_loaded: was });
        return true;
      }
      if (route === 'POST /v1/images/generations') {
        await generate(req, res);
        return true;
      }
      return false;
    },
    (_req, res) => sendJson(res, 404, { detail: 'Not Found' }),
  );

  return Object.assign(server, {
    model,
    generated,
    setPipelineLoaded: (v: boolean) => {
      loaded = v;
      if (v && idleSeconds === null) idleSeconds = 0;
    },
    pipelineLoaded: () => loaded,
    setLoadFailure: (message: string | null) => {
      loadFailure = message;
      if (message === null) loadError = null;
    },
    setIdleSeconds: (s: number | null) => {
      idleSeconds = s;
    },
    holdGenerations: () => {
      holding = true;
      return () => {
        holding = false;
        for (const release of releases.splice(0)) release();
      };
    },
  });
}
