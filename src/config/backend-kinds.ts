/**
 * The backend kinds a config may name. They live with the config (not with the providers) because the
 * config validates them before any provider exists; providers import them from here, never the reverse.
 */
export const BACKEND_KINDS = [
  'llama-cpp',
  'onnx-image',
  'llama-server',
  'ollama',
  'openai',
  'rknn-sd',
  'sd-cpp',
  'modelplane',
] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];
/** Kinds whose models run inside this process (native handles, no URL). */
export const IN_PROCESS_KINDS: readonly BackendKind[] = ['llama-cpp', 'onnx-image'];
/** Kinds reached over HTTP at `url`. */
export const REMOTE_KINDS: readonly BackendKind[] = BACKEND_KINDS.filter((k) => !IN_PROCESS_KINDS.includes(k));
