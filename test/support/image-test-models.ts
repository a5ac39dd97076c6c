/** Filled in by the onnx-image provider work: writes a tiny ONNX pipeline into TEST_MODELS_DIR. */
export async function ensureImageTestModels(): Promise<void> {}
