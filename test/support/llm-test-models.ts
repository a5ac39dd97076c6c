/** Filled in by the llama-cpp provider work: writes tiny GGUF models into TEST_MODELS_DIR. */
export async function ensureLlmTestModels(): Promise<void> {}
