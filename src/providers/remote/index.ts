/** Remote backend providers: one class per kind, each `new X(backend, clock)`. */
import type { Clock } from '../../common/clock.js';
import type { BackendConfig } from '../../config/app-config.js';
import type { BackendKind, ModelProvider } from '../model-provider.js';
import { LlamaServerProvider } from './llama-server.provider.js';
import { OllamaProvider } from './ollama.provider.js';
import { OpenAiProvider } from './openai.provider.js';
import { RknnSdProvider } from './rknn-sd.provider.js';
import { SdCppProvider } from './sd-cpp.provider.js';

export { LlamaServerProvider, OllamaProvider, OpenAiProvider, RknnSdProvider, SdCppProvider };
export { RemoteHttpClient, upstreamMessage } from './http-client.js';
export { sseData } from './sse.js';

export const REMOTE_PROVIDERS: Partial<
  Record<BackendKind, new (backend: BackendConfig, clock: Clock) => ModelProvider>
> = {
  'llama-server': LlamaServerProvider,
  ollama: OllamaProvider,
  openai: OpenAiProvider,
  'rknn-sd': RknnSdProvider,
  'sd-cpp': SdCppProvider,
};
