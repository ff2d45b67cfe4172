// typescript-eslint strictTypeChecked, plus the project's boundaries: only src/main.ts may
// touch process/console, only src/api/client.ts may import undici, only src/cli.ts commander.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const processRule = [
  'error',
  { name: 'process', message: 'Only src/main.ts touches process: take what you need from Deps.' },
  { name: 'console', message: 'Write to the injected streams (Deps, Reporter).' },
];

const importRule = (extra = []) => [
  'error',
  {
    paths: [
      { name: 'undici', message: 'Only src/api/client.ts imports undici.' },
      { name: 'commander', message: 'Only src/cli.ts uses commander.' },
      ...extra,
    ],
    patterns: [{ group: ['undici/*'], message: 'Only src/api/client.ts imports undici.' }],
  },
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'dist.next/**',
      'dist.old/**',
      'node_modules/**',
      'coverage/**',
      'test/fixtures/**',
    ],
  },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [...tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-confusing-void-expression': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-globals': processRule,
      'no-restricted-imports': importRule(),
    },
  },
  { files: ['src/main.ts'], rules: { 'no-restricted-globals': 'off' } },
  // JSON the tool writes goes through safeJson() (C1 and U+2028/9 escaped too). Exempt: the
  // request body (api/*), guard.ts itself, and messages that quote a value (config.ts, cli.ts).
  {
    files: ['src/**/*.ts'],
    ignores: [
      'src/api/**',
      'src/output/guard.ts',
      'src/config.ts',
      'src/cli.ts',
      'src/config-file.ts',
    ],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'JSON',
          property: 'stringify',
          message: 'Write JSON with safeJson() from src/output/guard.ts (the one output layer).',
        },
      ],
    },
  },
  // Type declarations only: they load nothing.
  { files: ['src/types/*.d.ts'], rules: { 'no-restricted-imports': 'off' } },
  {
    files: ['src/api/client.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'commander', message: 'Only src/cli.ts uses commander.' }] },
      ],
    },
  },
  {
    files: ['src/cli.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'undici', message: 'Only src/api/client.ts imports undici.' }] },
      ],
    },
  },
  {
    files: ['src/api/**/*.ts'],
    ignores: ['src/api/client.ts'],
    rules: {
      'no-restricted-imports': importRule([
        { name: 'chalk', message: 'api/* knows nothing of the terminal.' },
        { name: 'ora', message: 'api/* knows nothing of the terminal.' },
      ]),
    },
  },
  {
    files: ['test/**/*.ts', 'vitest.config.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['**/*.mjs', 'bin/**/*.js'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        performance: 'readonly',
      },
    },
  },
);
