// Type-aware lint: typescript-eslint's strict rules, with promises checked — a promise nobody
// awaits or handles (no-floating-promises) or one passed where a callback's result is ignored
// (no-misused-promises) is how a daemon loses an error. `npm run lint` (also run by .ci/run).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'bench/work/',
      'bench/results/',
      'test/fixtures/',
      'scripts/',
      'bench/',
      '.demo/',
      'eslint.config.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false }],
      '@typescript-eslint/no-misused-promises': 'error',
      // Numbers and booleans in messages are what template literals are for.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-confusing-void-expression': 'off',
      // With noUncheckedIndexedAccess every `rows[i]` is possibly undefined; where the code has just
      // checked the length or found the key, `!` says so more plainly than a dead branch.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // The status page's script: plain browser JavaScript, served as it is (no build step).
    files: ['web/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'script',
      globals: {
        document: 'readonly',
        window: 'readonly',
        fetch: 'readonly',
        location: 'readonly',
        history: 'readonly',
        URLSearchParams: 'readonly',
        setTimeout: 'readonly',
      },
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // vitest's asymmetric matchers (expect.any, expect.stringMatching) are typed `any`.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      // Fakes implement async interfaces without awaiting anything.
      '@typescript-eslint/require-await': 'off',
      // An abort signal's reason is whatever the scheduler aborted with (Shutdown, Removal, a timeout).
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
    },
  },
);
