/** Jest runs the TypeScript sources as ESM (Nest 12 and node-llama-cpp are ESM-only). */
const common = {
  testEnvironment: '<rootDir>/test/support/test-env.cjs',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.jest.json' }] },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
};

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/**/*.spec.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'] },
    // Against a real llama.cpp llama-server: only where the binary is provided (.ci/run sets the variable).
    ...(process.env.LLAMA_SERVER_BIN
      ? [{ ...common, displayName: 'peers', testMatch: ['<rootDir>/test/peers/**/*.peer-spec.ts'] }]
      : []),
  ],
  maxWorkers: 2,
  // Global: jest ignores testTimeout inside `projects`. Model loads and real sockets on a busy 2-core CI box.
  testTimeout: 60000,
};
