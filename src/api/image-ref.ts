/**
 * @module api/image-ref
 * A function's `image`, parsed: either an image in a registry (`127.0.0.1:5000/hello:1`,
 * `docker.io/library/busybox@sha256:...`) or a local OCI archive (`oci-archive:/srv/hello.tar`).
 * The API refuses what does not parse (so a typo is a 400 naming `image`, not a sandbox that
 * fails minutes later on some worker); workers parse again to fetch. Pure: no I/O.
 */

export type ImageRef =
  | {
      kind: 'registry';
      /** host[:port]; docker.io when the reference names none. */
      registry: string;
      /** Path in the registry, e.g. library/busybox. */
      repository: string;
      /** Tag; 'latest' when neither tag nor digest is given. '' with a digest only. */
      tag: string;
      /** sha256:<64 hex> when pinned, else ''. */
      digest: string;
    }
  | { kind: 'archive'; path: string };

export type ImageRefResult = { ok: true; ref: ImageRef } | { ok: false; reason: string };

const archivePrefix = 'oci-archive:';
const defaultRegistry = 'docker.io';
const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const digestPattern = /^sha256:[a-f0-9]{64}$/;
const registryPattern = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::\d{1,5})?$/;

export function parseImageRef(image: string): ImageRefResult {
  if (image.startsWith(archivePrefix)) {
    const path = image.slice(archivePrefix.length);
    if (!path.startsWith('/')) return fail('an oci-archive: path must be absolute');
    if (path.includes(':') || path.includes('\0')) return fail('an oci-archive: path must not contain ":"');
    if (path.split('/').includes('..')) return fail('an oci-archive: path must not contain ".."');
    return { ok: true, ref: { kind: 'archive', path } };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(image) || image.includes('://')) {
    return fail('give the reference without a transport (registry/name:tag or oci-archive:/path)');
  }
  let rest = image;
  let digest = '';
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestPattern.test(digest)) return fail(`digest must be sha256:<64 hex>, got "${digest}"`);
  }
  let tag = '';
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!tagPattern.test(tag)) return fail(`tag "${tag}" is not a valid tag`);
  }
  const parts = rest.split('/');
  let registry = defaultRegistry;
  if (parts.length > 1 && (parts[0].includes('.') || parts[0].includes(':') || parts[0] === 'localhost')) {
    registry = parts.shift()!;
    if (!registryPattern.test(registry)) return fail(`registry "${registry}" is not host[:port]`);
  }
  if (parts.length === 0 || !parts.every((p) => pathComponent.test(p))) {
    return fail('the repository must be lower-case path components ([a-z0-9] joined by . _ -)');
  }
  if (registry === defaultRegistry && parts.length === 1) parts.unshift('library');
  if (tag === '' && digest === '') tag = 'latest';
  return { ok: true, ref: { kind: 'registry', registry, repository: parts.join('/'), tag, digest } };
}

/** The canonical text of a parsed reference (what caches are keyed by). */
export function formatImageRef(ref: ImageRef): string {
  if (ref.kind === 'archive') return `${archivePrefix}${ref.path}`;
  const tag = ref.tag !== '' ? `:${ref.tag}` : '';
  const digest = ref.digest !== '' ? `@${ref.digest}` : '';
  return `${ref.registry}/${ref.repository}${tag}${digest}`;
}

/** True for registries on a loopback address: spoken to over plain HTTP, as Docker does. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '');
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]';
}

function fail(reason: string): ImageRefResult {
  return { ok: false, reason };
}
