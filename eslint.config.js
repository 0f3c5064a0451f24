// ESLint flat config. Besides typescript-eslint's recommended rules it keeps the design's
// boundaries (DESIGN §10): cores (src/**/core/**) and policies (src/policy/**) are sans-I/O, so
// they import no shell, no node built-in, no generated wire type, and read no clock, randomness,
// timer or environment.
import { builtinModules } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const root = dirname(fileURLToPath(import.meta.url));

const coreFiles = ['src/**/core/**/*.ts', 'src/policy/**/*.ts'];
const testFiles = ['src/**/*.test.ts'];

/**
 * Repo-relative paths a core may import (values). A path ending in '/' is a directory.
 * src/shared/ is listed file by file: only its pure helpers belong here.
 */
const coreImportAllowed = [
  'src/policy/',
  'src/api/',
  'src/config/defaults.ts',
  'src/shared/assert.ts',
  'src/shared/linked-list.ts',
  'src/shared/logger.ts',
  'src/shared/loop-delay-window.ts',
  'src/shared/metric-prefix.ts',
  'src/shared/rng.ts',
  'src/shared/small-set.ts',
];
/** Paths a core may import types from (erased at compile time, so no I/O comes along). */
const coreTypeImportAllowed = ['src/shared/clock.ts'];
/** Bare packages a core may import: pure computation only (hdr-histogram-js runs in plain JS). */
const corePackagesAllowed = ['zod', 'hdr-histogram-js'];
/** Bare packages a core's unit test may import besides the above. */
const coreTestPackagesAllowed = ['node:test', 'node:assert', 'node:assert/strict', 'fast-check'];
/** Paths a core's unit test may import besides the above: test fixtures. */
const coreTestImportAllowed = ['src/loadgen/testing/'];

const nodeBuiltins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

function isCoreDirectory(path) {
  return /(^|\/)core\//.test(path);
}

function matchesAny(path, list) {
  return list.some((p) => (p.endsWith('/') ? path.startsWith(p) : path === p));
}

/** The .ts source a relative specifier such as '../shell/proxy.js' names, repo-relative. */
function targetOf(fromFile, specifier) {
  const abs = resolve(dirname(fromFile), specifier).replace(/\.js$/, '.ts');
  return relative(root, abs).split('\\').join('/');
}

function bareVerdict(specifier, isTest) {
  if (isTest && coreTestPackagesAllowed.includes(specifier)) return undefined;
  if (nodeBuiltins.has(specifier) || specifier.startsWith('node:')) return 'a node built-in';
  if (specifier.startsWith('@bufbuild/')) return 'protobuf runtime (wire types belong to shells)';
  if (corePackagesAllowed.includes(specifier)) return undefined;
  return 'a package not on the core allow list';
}

function relativeVerdict(target, typeOnly, isTest) {
  if (target.startsWith('src/gen/')) return 'generated wire types';
  if (isCoreDirectory(target) || matchesAny(target, coreImportAllowed)) return undefined;
  if (isTest && matchesAny(target, coreTestImportAllowed)) return undefined;
  if (typeOnly && matchesAny(target, coreTypeImportAllowed)) return undefined;
  return 'a shell (outside core/, policy/, api/ and the pure helpers)';
}

/** Checks every import/export-from of a core file against the lists above. */
const coreImportsRule = {
  meta: { type: 'problem', schema: [], messages: { banned: "core/policy code may not import '{{what}}': {{why}}" } },
  create(context) {
    const file = context.filename;
    const isTest = file.endsWith('.test.ts');
    const check = (node) => {
      if (!node.source || typeof node.source.value !== 'string') return;
      const specifier = node.source.value;
      const typeOnly = node.importKind === 'type' || node.exportKind === 'type';
      const why = specifier.startsWith('.')
        ? relativeVerdict(targetOf(file, specifier), typeOnly, isTest)
        : bareVerdict(specifier, isTest);
      if (why) context.report({ node: node.source, messageId: 'banned', data: { what: specifier, why } });
    };
    return {
      ImportDeclaration: check,
      ExportNamedDeclaration: check,
      ExportAllDeclaration: check,
      ImportExpression(node) {
        context.report({ node, messageId: 'banned', data: { what: 'import()', why: 'dynamic imports are I/O' } });
      },
    };
  },
};

const dirigentPlugin = { rules: { 'core-imports': coreImportsRule } };

const clockAndChance = [
  { selector: "MemberExpression[object.name='Date'][property.name='now']", message: 'cores take nowMs as an argument' },
  { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'cores take nowMs as an argument' },
  { selector: "MemberExpression[object.name='performance'][property.name='now']", message: 'cores take nowMs as an argument' },
  { selector: "MemberExpression[object.name='Math'][property.name='random']", message: 'cores take an Rng' },
  { selector: "MemberExpression[object.name='process']", message: 'cores read no process state (env, hrtime, ...)' },
];

const timers = ['setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval', 'clearImmediate', 'queueMicrotask'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/gen/**', 'examples/**', 'test/fixtures/**', '.dirigent/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: {
        process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', URLSearchParams: 'readonly',
        setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly',
        setImmediate: 'readonly', clearImmediate: 'readonly', queueMicrotask: 'readonly', performance: 'readonly',
        AbortController: 'readonly', AbortSignal: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly',
        structuredClone: 'readonly', fetch: 'readonly', Response: 'readonly', Request: 'readonly', Headers: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: coreFiles,
    plugins: { dirigent: dirigentPlugin },
    rules: {
      'dirigent/core-imports': 'error',
      // Also in the cores' unit tests: they run on virtual time, so no wall-clock reads to assert on.
      'no-restricted-syntax': ['error', ...clockAndChance],
      'no-restricted-globals': ['error', ...timers.map((name) => ({ name, message: 'cores get time through events; shells own timers' }))],
    },
  },
  {
    // Tests read JSON output loosely; a wrong guess fails the assertion anyway.
    files: testFiles,
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
