import { strict as assert } from 'node:assert';
import { describe, test } from 'node:test';
import type { FunctionSpec } from '../../api/types.js';
import { scalingDefaults } from '../../config/defaults.js';
import { combineRuntimes, runtimeCapabilities, runtimeFor } from './multi-runtime.js';
import type { CreateResult, ExitListener, RuntimeSandbox, SandboxRuntime, SandboxSpec } from './runtime.js';

function fn(kind: 'command' | 'image'): FunctionSpec {
  return {
    name: 'f', image: kind === 'image' ? 'r.io/x:1' : '', command: kind === 'command' ? ['x'] : [],
    workingDir: '', port: 8080, env: {}, egress: false, auth: 'none', resources: { cpuMillis: 100, memoryMiB: 64 },
    concurrency: 1, timeoutMs: 1000, scaling: { ...scalingDefaults },
  };
}

/** Records which sandboxes it was asked to create and delete. */
function fake(name: SandboxRuntime['name']): SandboxRuntime & { created: string[]; deleted: string[]; crash(id: string): void } {
  const live = new Map<string, RuntimeSandbox>();
  const listeners: ExitListener[] = [];
  const created: string[] = [];
  const deleted: string[] = [];
  return {
    name, created, deleted,
    async create(spec: SandboxSpec): Promise<CreateResult> {
      created.push(spec.sandboxId);
      const sandbox = { sandboxId: spec.sandboxId, function: spec.fn.name, address: `h:${created.length}`, createdAtMs: 0 };
      live.set(spec.sandboxId, sandbox);
      return { ok: true, sandbox, startMs: 0, readinessMs: 0, totalMs: 0 };
    },
    async delete(id: string) {
      deleted.push(id);
      live.delete(id);
    },
    list: () => [...live.values()],
    onExit: (l) => void listeners.push(l),
    async close() {
      live.clear();
    },
    crash(id: string) {
      live.delete(id);
      for (const l of listeners) l(id, 'boom');
    },
  };
}

describe('several runtimes on one worker', () => {
  test('capabilities: process runs commands, oci and containerd run images', () => {
    assert.deepEqual(runtimeCapabilities('process'), ['process']);
    assert.deepEqual(runtimeCapabilities('oci'), ['image', 'oci']);
    assert.deepEqual(runtimeCapabilities('containerd'), ['image', 'containerd']);
  });

  test('commands go to process, images to the first image runtime', async () => {
    const p = fake('process');
    const o = fake('oci');
    const c = fake('containerd');
    const multi = combineRuntimes([p, o, c]);
    assert.ok((await multi.create({ sandboxId: 'a', fn: fn('command') })).ok);
    assert.ok((await multi.create({ sandboxId: 'b', fn: fn('image') })).ok);
    assert.deepEqual([p.created, o.created, c.created], [['a'], ['b'], []]);
    assert.equal(multi.list().length, 2);
    await multi.delete('b');
    assert.deepEqual([p.deleted, o.deleted], [[], ['b']]);
  });

  test('a function no runtime can run fails the create, saying what to start', async () => {
    const reason = runtimeFor([fake('process')], fn('image'));
    assert.match(typeof reason === 'string' ? reason : '', /no image runtime.*--runtime oci or containerd/);
    const multi = combineRuntimes([fake('oci'), fake('containerd')]);
    const result = await multi.create({ sandboxId: 'a', fn: fn('command') });
    assert.equal(result.ok, false);
  });

  test('a crash reaches the listener and frees the id', async () => {
    const p = fake('process');
    const multi = combineRuntimes([p, fake('oci')]);
    const exits: string[] = [];
    multi.onExit((id, reason) => exits.push(`${id}:${reason}`));
    await multi.create({ sandboxId: 'a', fn: fn('command') });
    p.crash('a');
    assert.deepEqual(exits, ['a:boom']);
    assert.ok((await multi.create({ sandboxId: 'a', fn: fn('command') })).ok, 'the id can be used again');
  });
});
