import { Inject, Injectable } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { APP_CONFIG, type AppConfig, type BackendConfig } from '../config/app-config.js';
import type { BackendKind, ModelProvider } from './model-provider.js';
import { LlamaCppProvider } from './llama-cpp/llama-cpp.provider.js';
import { LlamaRuntime } from './llama-cpp/llama-runtime.js';
import { OnnxImageProvider } from './onnx-image/onnx-image.provider.js';
import { fleetOf } from '../config/fleet-config.js';
import { LlamaServerProvider, OllamaProvider, OpenAiProvider, RknnSdProvider, SdCppProvider } from './remote/index.js';
import { ModelplaneProvider } from './remote/modelplane.provider.js';

type Builder = (backend: BackendConfig) => ModelProvider;

/** Builds one provider per configured backend, by kind. */
@Injectable()
export class ProviderFactory {
  private readonly builders: Record<BackendKind, Builder>;
  /** One node-llama-cpp instance per process, shared by every llama-cpp backend (created on first use). */
  private llamaRuntime: LlamaRuntime | null = null;

  constructor(@Inject(APP_CONFIG) config: AppConfig, clock: Clock) {
    const llama = (): LlamaRuntime => {
      // The runtime's thread cap must allow the largest per-backend setting.
      const configured = config.backends.flatMap((b) =>
        b.type === 'llama-cpp' && b.threads !== null ? [b.threads] : [],
      );
      this.llamaRuntime ??= new LlamaRuntime({ threads: configured.length > 0 ? Math.max(...configured) : null });
      return this.llamaRuntime;
    };
    this.builders = {
      'llama-cpp': (b) => new LlamaCppProvider(b, llama(), config, clock),
      'onnx-image': (b) => new OnnxImageProvider(b, config),
      'llama-server': (b) => new LlamaServerProvider(b, clock),
      ollama: (b) => new OllamaProvider(b, clock),
      openai: (b) => new OpenAiProvider(b, clock),
      'rknn-sd': (b) => new RknnSdProvider(b, clock),
      'sd-cpp': (b) => new SdCppProvider(b, clock),
      modelplane: (b) => {
        const fleet = fleetOf(config);
        // One fleet, one set of secrets: a peer takes the keys this node takes unless its entry names others.
        const peer = { ...b, apiKey: b.apiKey ?? fleet.apiKey, adminToken: b.adminToken ?? fleet.adminToken };
        return new ModelplaneProvider(peer, clock, { selfNode: fleet.nodeName });
      },
    };
  }

  create(backend: BackendConfig): ModelProvider {
    return this.builders[backend.type](backend);
  }

  /** Frees process-wide runtimes; call after every provider was disposed. */
  async dispose(): Promise<void> {
    await this.llamaRuntime?.dispose();
    this.llamaRuntime = null;
  }
}
