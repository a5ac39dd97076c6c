import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { BackendStateService } from '../backend-state/backend-state.service.js';
import { canServe, Readiness } from '../backend-state/readiness.js';
import { Clock } from '../common/clock.js';
import { BackendUnavailableError, UnsupportedOperationError } from '../common/errors.js';
import { assertValidModelId } from '../common/model-id.js';
import { measured, measuredStream, outcomeOf } from '../metrics/inference-metrics.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { type Lease, ModelLifecycleService } from '../models/model-lifecycle.service.js';
import { ProbeService } from '../models/probe.service.js';
import type { ModelProvider } from '../providers/model-provider.js';
import type {
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionResponse,
  CompletionChunk,
  CompletionRequest,
  CompletionResponse,
  EmbeddingsRequest,
  EmbeddingsResponse,
  ImageGenerationRequest,
  ImageGenerationResponse,
} from '../providers/openai-types.js';
import { ProviderRegistry, type ResolvedModel } from '../providers/provider-registry.service.js';
import { UpstreamUnavailableError } from '../providers/remote/upstream-errors.js';

type Operation =
  'chatCompletion' | 'chatCompletionStream' | 'completion' | 'completionStream' | 'embeddings' | 'generateImages';

/** A stream whose lease is released exactly once, when the stream ends, fails or the client goes away. */
export interface LeasedStream<T> {
  chunks: AsyncIterable<T>;
  lease: Lease;
}

type Admitted = ResolvedModel & { provider: Required<Pick<ModelProvider, Operation>> };

/** A refused or failed request on a remote backend re-probes it at most this often (evidence, not polling). */
const EVIDENCE_PROBE_MIN_GAP_MS = 250;
/** How long a request refused for an unavailable backend waits for that fresh probe before answering 503. */
const EVIDENCE_PROBE_WAIT_MS = 1_000;

/**
 * The admission door for every inference path (HTTP and bus): model resolution, backend readiness,
 * activity lease with lazy load, then the provider. Failures inside a request stay in that request.
 *
 * Readiness moves only through probes, but requests are evidence: a proxied request that finds the
 * server gone (refused/reset, 503 Loading model) answers 503 and probes that backend at once, and a
 * request refused because its remote backend is unavailable first waits (briefly) for a fresh probe,
 * so admission follows the server within one probe round trip, down and back up.
 */
@Injectable()
export class InferenceService implements OnModuleDestroy {
  /** Streams in flight per backend, cut with an error event when their backend becomes unavailable. */
  private readonly streams = new Map<string, Set<AbortController>>();
  private readonly lastEvidenceProbe = new Map<string, number>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly registry: ProviderRegistry,
    private readonly backendState: BackendStateService,
    private readonly lifecycle: ModelLifecycleService,
    private readonly probes: ProbeService,
    private readonly metrics: MetricsService,
    private readonly clock: Clock,
  ) {
    this.unsubscribe = backendState.onTransition((event) => {
      if (event.to !== Readiness.Unavailable) return;
      const cut = new BackendUnavailableError(event.backend, event.to, event.reason, 1);
      for (const controller of this.streams.get(event.backend) ?? []) controller.abort(cut);
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe();
  }

  /** Resolve and admit without loading: refuses at once when the model's backend cannot serve. */
  admit(modelId: unknown, operation: Operation): Admitted {
    const id = assertValidModelId(modelId);
    const resolved = this.registry.resolve(id);
    const state = this.backendState.get(resolved.backend.name);
    if (!canServe(state.readiness))
      throw new BackendUnavailableError(resolved.backend.name, state.readiness, state.reason);
    if (typeof resolved.provider[operation] !== 'function') {
      throw new UnsupportedOperationError(
        id,
        `Model '${id}' (${resolved.descriptor.purpose}) does not support ${describe(operation)}`,
      );
    }
    return resolved as Admitted;
  }

  chatCompletion(req: ChatCompletionRequest, signal: AbortSignal): Promise<ChatCompletionResponse> {
    return this.run(req.model, 'chatCompletion', signal, (m) => m.provider.chatCompletion(m.id, req, signal));
  }

  completion(req: CompletionRequest, signal: AbortSignal): Promise<CompletionResponse> {
    return this.run(req.model, 'completion', signal, (m) => m.provider.completion(m.id, req, signal));
  }

  embeddings(req: EmbeddingsRequest, signal: AbortSignal): Promise<EmbeddingsResponse> {
    return this.run(req.model, 'embeddings', signal, (m) => m.provider.embeddings(m.id, req, signal));
  }

  generateImages(req: ImageGenerationRequest, signal: AbortSignal): Promise<ImageGenerationResponse> {
    return this.run(
      req.model,
      'generateImages',
      signal,
      (m) => m.provider.generateImages(m.id, req, signal),
      (m) => m.provider.checkImageRequest?.(m.id, req),
    );
  }

  chatCompletionStream(req: ChatCompletionRequest, signal: AbortSignal): Promise<LeasedStream<ChatCompletionChunk>> {
    return this.stream(req.model, 'chatCompletionStream', signal, (m, s) =>
      m.provider.chatCompletionStream(m.id, req, s),
    );
  }

  completionStream(req: CompletionRequest, signal: AbortSignal): Promise<LeasedStream<CompletionChunk>> {
    return this.stream(req.model, 'completionStream', signal, (m, s) => m.provider.completionStream(m.id, req, s));
  }

  private async run<T>(
    modelId: unknown,
    operation: Operation,
    signal: AbortSignal,
    call: (model: Admitted) => Promise<T>,
    beforeLoad?: (model: Admitted) => unknown,
  ): Promise<T> {
    const startedMs = this.clock.nowMs();
    const model = await this.admitWithEvidence(modelId, operation);
    return measured(this.deps(), { model: model.id, operation }, startedMs, signal, async () => {
      // A request the provider can refuse without the model never loads it (nor evicts another for it).
      beforeLoad?.(model);
      const lease = await this.lifecycle.acquire(model.id, signal);
      try {
        return await call(model);
      } catch (err) {
        throw this.evidence(model, err);
      } finally {
        lease.release();
      }
    });
  }

  /**
   * A stream is only returned once its first chunk is in hand: a failure before it (upstream 4xx, server
   * gone, load failure) is thrown here and answered with an HTTP status, never a 200 stream with an error.
   */
  private async stream<T>(
    modelId: unknown,
    operation: Operation,
    signal: AbortSignal,
    open: (model: Admitted, signal: AbortSignal) => AsyncIterable<T>,
  ): Promise<LeasedStream<T>> {
    const startedMs = this.clock.nowMs();
    const model = await this.admitWithEvidence(modelId, operation);
    const labels = { model: model.id, operation };
    let lease: Lease;
    try {
      lease = await this.lifecycle.acquire(model.id, signal);
    } catch (err) {
      this.metrics.requestFinished({ ...labels, outcome: outcomeOf(err, signal) });
      throw err;
    }
    const cut = new AbortController();
    const backend = model.backend.name;
    const active = this.streams.get(backend) ?? new Set<AbortController>();
    this.streams.set(backend, active.add(cut));
    const forget = (): void => {
      active.delete(cut);
      lease.release();
    };
    const iterator = open(model, AbortSignal.any([signal, cut.signal]))[Symbol.asyncIterator]();
    // The cut ends the stream even if the provider's pending read never notices its abort: the client gets
    // its error event now, and the provider is told to stop without being waited for.
    const cutNow = new Promise<never>((_, reject) =>
      cut.signal.addEventListener('abort', () => reject(cut.signal.reason as Error), { once: true }),
    );
    cutNow.catch(() => undefined);
    let first: IteratorResult<T>;
    try {
      first = await Promise.race([iterator.next(), cutNow]);
    } catch (err) {
      forget();
      this.metrics.requestFinished({ ...labels, outcome: outcomeOf(err, signal) });
      throw this.evidence(model, cut.signal.aborted ? cut.signal.reason : err);
    }
    // A hand-written iterator rather than a generator: return() must clean up even if never started.
    let pending: IteratorResult<T> | null = first;
    let finished = false;
    const finish = async (): Promise<void> => {
      if (finished) return;
      finished = true;
      forget();
      // A remote read is only a socket (aborted with it); an in-process one holds a sequence, so it is awaited
      // before the lease is known to be free.
      if (cut.signal.aborted && model.provider.capabilities.remote) {
        void Promise.resolve(iterator.return?.(undefined)).catch(() => undefined);
      } else {
        await iterator.return?.(undefined);
      }
    };
    const chunks: AsyncIterable<T> = {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<T>> => {
          if (finished) return { done: true, value: undefined };
          try {
            const result = pending ?? (await Promise.race([iterator.next(), cutNow]));
            pending = null;
            if (result.done) await finish();
            return result;
          } catch (err) {
            await finish();
            // Our own cut (backend went unavailable) says why; the provider only saw an abort.
            throw this.evidence(model, cut.signal.aborted ? cut.signal.reason : err);
          }
        },
        return: async (): Promise<IteratorResult<T>> => {
          await finish();
          return { done: true, value: undefined };
        },
      }),
    };
    const recorded = measuredStream(this.deps(), labels, startedMs, signal, chunks);
    return {
      lease,
      chunks: {
        [Symbol.asyncIterator]: () => ({
          next: () => recorded.next(),
          // A generator returned before its first next() skips its finally: clean up underneath too.
          return: async (): Promise<IteratorResult<T>> => {
            await recorded.return(undefined);
            await finish();
            return { done: true, value: undefined };
          },
        }),
      },
    };
  }

  private deps(): { metrics: MetricsService; clock: Clock } {
    return { metrics: this.metrics, clock: this.clock };
  }

  /** admit(); when refused for an unavailable remote backend, first look again (one fresh probe, bounded). */
  private async admitWithEvidence(modelId: unknown, operation: Operation): Promise<Admitted> {
    try {
      return this.admit(modelId, operation);
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) throw err;
      const resolved = this.registry.resolve(assertValidModelId(modelId));
      const state = this.backendState.get(resolved.backend.name);
      if (!resolved.provider.capabilities.remote || state.readiness !== Readiness.Unavailable) throw err;
      // Only for states that end quickly (a restart): a hung server would cost every refused request a probe timeout.
      if (!/refused|reset|socket|loading model/i.test(state.reason ?? '')) throw err;
      const probed = this.probeAsEvidence(resolved.backend.name);
      if (!probed) throw err;
      // Aborted once the race is decided, so a quick probe leaves no wait pending on the clock.
      const bound = new AbortController();
      try {
        await Promise.race([probed, this.clock.delay(EVIDENCE_PROBE_WAIT_MS, bound.signal).catch(() => undefined)]);
      } finally {
        bound.abort();
      }
      return this.admit(modelId, operation);
    }
  }

  /** A connection failure (or loading answer) from a remote backend triggers a probe of it right away. */
  private evidence(model: Admitted, err: unknown): unknown {
    if (err instanceof UpstreamUnavailableError) void this.probeAsEvidence(model.backend.name);
    return err;
  }

  private probeAsEvidence(backend: string): Promise<void> | null {
    const now = Date.now();
    // Real time: this spaces real network probes, it is not a model-visible timeout.
    if (now - (this.lastEvidenceProbe.get(backend) ?? 0) < EVIDENCE_PROBE_MIN_GAP_MS) return null;
    this.lastEvidenceProbe.set(backend, now);
    return this.probes.probeNow(backend);
  }
}

function describe(operation: Operation): string {
  switch (operation) {
    case 'chatCompletion':
    case 'chatCompletionStream':
      return 'chat completions';
    case 'completion':
    case 'completionStream':
      return 'text completions';
    case 'embeddings':
      return 'embeddings';
    case 'generateImages':
      return 'image generation';
  }
}
