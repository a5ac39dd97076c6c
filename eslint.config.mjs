import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

/**
 * The src/ folders from the bottom up (docs/architecture.md "Layers"). A folder imports only from folders in
 * layers below its own, so no two folders can ever import each other; a new folder must be placed here before
 * anything else may import it.
 */
const LAYERS = [
  ['common'],
  // formats: file-format writers (GGUF, ONNX protobuf); they know nothing of the app, so only common is below them.
  ['config', 'formats'],
  ['auth', 'logging', 'backend-state', 'dashboard'],
  ['openapi', 'providers'],
  ['models', 'demo'],
  ['events', 'health', 'metrics', 'eviction'],
  ['fleet', 'inference'],
  ['bus'],
];
const layerZones = LAYERS.flatMap((layer, i) =>
  layer.map((folder) => ({
    target: `./src/${folder}`,
    from: './src',
    except: [...LAYERS.slice(0, i).flat(), folder].map((f) => `./${f}`),
    message: `src/${folder} may import only from the layers below it (${LAYERS.slice(0, i).flat().join(', ') || 'none'}).`,
  })),
);

export default tseslint.config(
  { ignores: ['dist/**', 'dist-bench/**', 'node_modules/**', 'data/**', 'coverage/**', '**/*.cjs', '*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-extraneous-class': 'off',
      '@typescript-eslint/require-await': 'off',
      eqeqeq: 'error',
      curly: ['error', 'multi-line'],
    },
  },
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            ...layerZones,
            { target: './src', from: './test', message: 'Production code never imports test code.' },
          ],
        },
      ],
    },
  },
  {
    // Only the adapter folders touch the outside world (docs/architecture.md "Layers"): a runtime or a network client
    // imported elsewhere is a boundary leak.
    files: ['src/**/*.ts'],
    ignores: [
      'src/providers/llama-cpp/**',
      'src/providers/onnx-image/**',
      'src/providers/remote/**',
      'src/bus/**',
      'src/formats/**',
    ],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['node-llama-cpp', 'onnxruntime-node', 'onnx-proto', 'undici', 'mqtt', '@eclipse-zenoh/zenoh-ts'].map(
            (name) => ({
              name,
              message:
                'Only the backend adapter folders (src/providers/<kind>, src/bus) may import runtimes and clients.',
              allowTypeImports: true,
            }),
          ),
        },
      ],
    },
  },
  {
    // Format writers serialize files (onnx-proto is a protobuf schema, not a runtime); they never run a model.
    files: ['src/formats/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['node-llama-cpp', 'onnxruntime-node', 'undici', 'mqtt', '@eclipse-zenoh/zenoh-ts'].map((name) => ({
            name,
            message: 'src/formats writes files; runtimes and clients belong to the adapter folders.',
            allowTypeImports: true,
          })),
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // The dashboard's browser scripts are served as they are (no build step): plain JS, no type info.
    files: ['src/dashboard/public/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['src/dashboard/public/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(
        [
          'window',
          'document',
          'fetch',
          'sessionStorage',
          'performance',
          'EventSource',
          'Node',
          'setInterval',
          'console',
        ].map((name) => [name, 'readonly']),
      ),
    },
  },
  prettier,
);
