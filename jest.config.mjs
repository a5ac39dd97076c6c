/** Jest runs the TypeScript sources as ESM (Nest 12 and node-llama-cpp are ESM-only). */
const common = {
  testEnvironment: '<rootDir>/test/support/test-env.cjs',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.jest.json' }] },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
};

/**
 * Specs that load a native runtime (node-llama-cpp, onnxruntime-node) or open sockets (fake servers, MQTT
 * broker, WebSocket): the medium tier. Everything else under test/ named *.spec.ts is unit: pure and fast, and
 * test/support/unit-guard.cjs and no-runtime.cjs make a socket or a runtime there fail.
 */
const MEDIUM = [
  'test/bus/bus.service.spec.ts',
  'test/bus/mqtt.transport.spec.ts',
  'test/bus/zenoh.transport.spec.ts',
  'test/models/probe.service.spec.ts',
  'test/formats/gguf-writer.spec.ts',
  'test/providers/llama-cpp/llama-cpp.provider.spec.ts',
  'test/providers/llama-cpp/off-thread-tokenizer.spec.ts',
  'test/providers/llama-cpp/parallel.spec.ts',
  'test/providers/llama-cpp/request-features.spec.ts',
  'test/providers/llama-cpp/runtime-and-queue.spec.ts',
  'test/providers/onnx-image/onnx-image.provider.spec.ts',
  'test/providers/onnx-image/ort-tensors.spec.ts',
  'test/demo/tiny-image-pipeline.spec.ts',
  'test/providers/remote/llama-server.provider.spec.ts',
  'test/providers/remote/llama-server.fake-fixtures.spec.ts',
  'test/providers/remote/ollama.provider.spec.ts',
  'test/providers/remote/openai.provider.spec.ts',
  'test/providers/remote/proxy-errors.spec.ts',
  'test/providers/remote/rknn-sd.provider.spec.ts',
  'test/providers/remote/sd-cpp.provider.spec.ts',
].map((path) => `<rootDir>/${path}`);

/** testPathIgnorePatterns take regular expressions; MEDIUM holds plain paths. */
function pathToRegex(path) {
  return `^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
}

export default {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/test/**/*.spec.ts'],
      testPathIgnorePatterns: ['/node_modules/', ...MEDIUM.map(pathToRegex)],
      setupFilesAfterEnv: ['<rootDir>/test/support/unit-guard.cjs'],
      moduleNameMapper: {
        ...common.moduleNameMapper,
        '^(node-llama-cpp|onnxruntime-node)$': '<rootDir>/test/support/no-runtime.cjs',
      },
    },
    { ...common, displayName: 'medium', testMatch: MEDIUM },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'],
      // Specs that start the built server share one build, made before any of them runs.
      globalSetup: '<rootDir>/test/support/build-server.cjs',
    },
    // Against a real llama.cpp llama-server: only where the binary is provided (.ci/run sets the variable).
    ...(process.env.LLAMA_SERVER_BIN
      ? [{ ...common, displayName: 'peers', testMatch: ['<rootDir>/test/peers/**/*.peer-spec.ts'] }]
      : []),
  ],
  maxWorkers: 2,
  // Global: jest ignores testTimeout inside `projects`. Model loads and real sockets on a busy 2-core CI box.
  testTimeout: 60000,
};
