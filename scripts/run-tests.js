#!/usr/bin/env node
// Runs every compiled test file (dist/**/*.test.js) with node's test runner, one file at a time
// per worker process (integration suites start real processes on fixed loopback ports).
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

/** dist/a/b.test.js comes from src/a/b.test.ts; a build does not delete what a moved or removed test left. */
function hasSource(compiled) {
  return existsSync(join('src', compiled.slice('dist/'.length).replace(/\.js$/, '.ts')));
}

const only = process.argv.slice(2);
const compiled = find('dist', []);
const stale = compiled.filter((f) => !hasSource(f));
if (stale.length > 0) process.stderr.write(`run-tests: not running ${stale.length} compiled test file(s) whose source is gone (delete dist/ to drop them): ${stale.join(', ')}\n`);
const files = compiled.filter((f) => hasSource(f) && (only.length === 0 || only.some((o) => f.includes(o)))).sort();
if (files.length === 0) {
  process.stderr.write('run-tests: no test files found under dist/\n');
  process.exit(1);
}
// TAP on stdout as before; failures also go to a file, printed last so a CI log's tail says
// what failed and why (tests cancelled only because their suite failed are counted, not repeated).
const failuresDir = mkdtempSync(join(tmpdir(), 'dirigent-test-failures-'));
const failuresFile = join(failuresDir, 'failures.jsonl');
const r = spawnSync(process.execPath, [
  '--test', '--test-concurrency=1',
  '--test-reporter=tap', '--test-reporter-destination=stdout',
  '--test-reporter=./scripts/failure-reporter.mjs', `--test-reporter-destination=${failuresFile}`,
  ...files,
], { stdio: 'inherit' });
let failures = [];
try {
  failures = readFileSync(failuresFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
} catch {
  failures = [];
}
rmSync(failuresDir, { recursive: true, force: true });
// A suite fails as a whole when one of its tests does: only the tests and hooks carry a cause.
const cancelled = failures.filter((f) => f.kind === 'cancelledByParent');
const causes = failures.filter((f) => f.kind !== 'cancelledByParent' && f.kind !== 'subtestsFailed');
if (failures.length > 0) {
  process.stdout.write(`\n# run-tests: ${causes.length} failure(s), ${cancelled.length} test(s) cancelled by them\n`);
  for (const f of causes) {
    process.stdout.write(`\n## ${f.name} (${f.kind}) in ${f.file}\n${f.message}\n`);
  }
}
process.exit(r.status ?? 1);
