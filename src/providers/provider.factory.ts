import { Inject, Injectable } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { APP_CONFIG, type AppConfig, type BackendConfig } from '../config/app-config.js';
import type { BackendKind, ModelProvider } from './model-provider.js';
import { OnnxImageProvider } from './onnx-image/onnx-image.provider.js';
import { LlamaServerProvider, OllamaProvider, OpenAiProvider, RknnSdProvider, SdCppProvider } from './remote/index.js';

type Builder = (backend: BackendConfig) => ModelProvider;

/** Builds one provider per configured backend, by kind. */
@Injectable()
export class ProviderFactory {
  private readonly builders: Record<BackendKind, Builder>;

  constructor(@Inject(APP_CONFIG) config: AppConfig, clock: Clock) {
    const missing =
      (kind: string): Builder =>
      () => {
        throw new Error(`backend kind '${kind}' is not available in this build`);
      };
    this.builders = {
      'llama-cpp': missing('llama-cpp'),
      'onnx-image': (b) => new OnnxImageProvider(b, config),
      'llama-server': (b) => new LlamaServerProvider(b, clock),
      ollama: (b) => new OllamaProvider(b, clock),
      openai: (b) => new OpenAiProvider(b, clock),
      'rknn-sd': (b) => new RknnSdProvider(b, clock),
      'sd-cpp': (b) => new SdCppProvider(b, clock),
    };
  }

  create(backend: BackendConfig): ModelProvider {
    return this.builders[backend.type](backend);
  }
}
