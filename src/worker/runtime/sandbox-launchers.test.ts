/**
 * The line a launcher evals: every argument and env value must reach exec verbatim, quotes,
 * newlines, backslashes and `$` included. Checked by a real /bin/sh reading the line the way a
 * launcher does (read -r, then eval) and printing what it got.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { launchLine, shellWord } from './sandbox-launchers.js';

/** Runs the launcher's read+eval on `line`. */
function evalLikeALauncher(line: string): Promise<string> {
  const script = "nl='\n'\nIFS= read -r line || exit 0\neval \"$line\"";
  return new Promise((resolve, reject) => {
    const child = execFile('/bin/sh', ['-c', script], { env: {} }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    child.stdin?.end(line);
  });
}

describe('launcher line', () => {
  test('words are single-quoted; newlines become "$nl" so the line stays one line', () => {
    assert.equal(shellWord("it's"), `'it'\\''s'`);
    assert.equal(shellWord('a\nb'), `'a'"$nl"'b'`);
    assert.ok(!launchLine('/l', { K: 'x\ny' }, ['/bin/true']).slice(0, -1).includes('\n'));
  });

  test('argv and env survive the shell verbatim', async () => {
    const tricky = `a'b "c" $HOME \\n \`x\` ; | & \n line2 *`;
    const env = { TRICKY: tricky, PORT: '8080' };
    const script = 'printf "%s|" "$@" "$TRICKY" "$PORT"';
    const dir = await mkdtemp(join(tmpdir(), "dirigent-launch-'q'-"));
    try {
      const log = join(dir, 'sandbox.log');
      await evalLikeALauncher(launchLine(log, env, ['/bin/sh', '-c', script, 'sh', tricky, '']));
      assert.equal(await readFile(log, 'utf8'), `${tricky}||${tricky}|8080|`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
