/**
 * The bubblewrap argv as data: what is shared read-only, in which order, which namespaces, and
 * the uid drop inside. No process is started (process-isolation.test.ts runs the real thing).
 */
import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import { bwrapArgv, functionDirs, type BwrapHost, type BwrapSandbox } from './bwrap-argv.js';

const host: BwrapHost = {
  bwrapPath: '/usr/bin/bwrap',
  setprivPath: '/usr/bin/setpriv',
  rootEntries: [
    { path: '/bin', kind: 'symlink', target: 'usr/bin' },
    { path: '/lib64', kind: 'dir' },
  ],
  etcPaths: ['/etc/passwd', '/etc/ssl/certs'],
};

function sandbox(over: Partial<BwrapSandbox> = {}): BwrapSandbox {
  return {
    uid: 200_007,
    tmpMiB: 64,
    workingDir: '/srv/app',
    commandPath: '/usr/bin/node',
    args: ['server.js'],
    extraDirs: [],
    ...over,
  };
}

/** The argv split into bwrap's part, and setpriv + command after the `--`. */
function parts(argv: string[]): { outer: string[]; inner: string[] } {
  const end = argv.indexOf('--');
  return { outer: argv.slice(0, end), inner: argv.slice(end + 1) };
}

/** The [flag, ...values] groups of the outer part, as 'flag a b' strings. */
function has(outer: string[], ...group: string[]): boolean {
  for (let i = 0; i + group.length <= outer.length; i++) {
    if (group.every((g, j) => outer[i + j] === g)) return true;
  }
  return false;
}

describe('bwrap argv', () => {
  test('private pid, ipc, uts and cgroup namespaces; host network, user and session kept', () => {
    const { outer } = parts(bwrapArgv(host, sandbox()));
    assert.equal(outer[0], '/usr/bin/bwrap');
    for (const flag of ['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup', '--die-with-parent']) {
      assert.ok(outer.includes(flag), flag);
    }
    for (const flag of ['--unshare-user', '--unshare-net', '--unshare-all', '--new-session', '--cap-drop', '--clearenv', '--setenv']) {
      assert.ok(!outer.includes(flag), flag);
    }
  });

  test('only /usr, the root symlinks, curated /etc and the function dirs are shared, read-only', () => {
    const { outer } = parts(bwrapArgv(host, sandbox()));
    assert.ok(has(outer, '--ro-bind', '/usr', '/usr'));
    assert.ok(has(outer, '--symlink', 'usr/bin', '/bin'));
    assert.ok(has(outer, '--ro-bind', '/lib64', '/lib64'));
    assert.ok(has(outer, '--ro-bind', '/etc/passwd', '/etc/passwd'));
    assert.ok(has(outer, '--ro-bind', '/srv/app', '/srv/app'));
    assert.ok(has(outer, '--proc', '/proc') && has(outer, '--dev', '/dev'));
    assert.ok(has(outer, '--perms', '1777', '--size', String(64 * 1_048_576), '--tmpfs', '/tmp'));
    assert.ok(!outer.includes('--bind'), 'nothing writable from the host');
    const sources = outer.flatMap((a, i) => (a === '--ro-bind' ? [outer[i + 1]] : []));
    assert.deepEqual(sources, ['/usr', '/lib64', '/etc/passwd', '/etc/ssl/certs', '/srv/app']);
  });

  test('parents of bind targets are made 0755 (bwrap makes them 0700), each once', () => {
    const { outer } = parts(bwrapArgv(host, sandbox({ workingDir: '/srv/app/v1', extraDirs: ['/srv/data'] })));
    const made = outer.flatMap((a, i) => (a === '--dir' ? [outer[i + 1]] : []));
    assert.deepEqual(made, ['/etc', '/etc/ssl', '/srv', '/srv/app']);
    assert.ok(has(outer, '--perms', '0755', '--dir', '/etc'));
  });

  test('function dirs come after the /tmp tmpfs, so a dir below /tmp stays visible', () => {
    const { outer } = parts(bwrapArgv(host, sandbox({ workingDir: '/tmp/fn-1' })));
    assert.ok(outer.indexOf('/tmp/fn-1') > outer.indexOf('--tmpfs'));
  });

  test('chdir to the working dir at the same path, or /tmp without one', () => {
    assert.ok(has(parts(bwrapArgv(host, sandbox())).outer, '--chdir', '/srv/app'));
    const bare = parts(bwrapArgv(host, sandbox({ workingDir: '' }))).outer;
    assert.ok(has(bare, '--chdir', '/tmp'));
  });

  test('inside: setpriv to the uid with no groups, caps or new privileges, then the command', () => {
    const { inner } = parts(bwrapArgv(host, sandbox()));
    assert.deepEqual(inner, [
      '/usr/bin/setpriv', '--reuid', '200007', '--regid', '200007', '--clear-groups',
      '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all', '--',
      '/usr/bin/node', 'server.js',
    ]);
  });

  test('function dirs: command dir outside /usr, arg dirs, minus nested ones and the host root', () => {
    assert.deepEqual(functionDirs(sandbox({ commandPath: '/opt/fn/bin/srv' })), ['/srv/app', '/opt/fn/bin']);
    assert.deepEqual(functionDirs(sandbox({ extraDirs: ['/srv/app/lib', '/data/'] })), ['/data', '/srv/app']);
    assert.deepEqual(functionDirs(sandbox({ workingDir: '/', commandPath: '/usr/local/bin/x' })), []);
    // Merged /usr: /bin is a symlink to usr/bin, already visible; no second mount.
    assert.deepEqual(functionDirs(sandbox({ workingDir: '', commandPath: '/bin/sh' }), ['/bin', '/lib']), []);
    assert.deepEqual(functionDirs(sandbox({ workingDir: '', commandPath: '/bin/sh' })), ['/bin']);
  });
});
