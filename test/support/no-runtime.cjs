// Mapped in place of node-llama-cpp and onnxruntime-node in the unit tier: loading a native runtime is a
// medium-tier test (MEDIUM in jest.config.mjs).
throw new Error('unit tests load no native runtime: move this spec to the medium tier (MEDIUM in jest.config.mjs)');
