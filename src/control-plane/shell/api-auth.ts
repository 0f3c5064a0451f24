/**
 * @module control-plane/shell/api-auth
 * Who calls the management API, and the tenancy state the leader keeps in memory: API tokens
 * (only their SHA-256; the bootstrap admin token from its file, never stored) and namespace
 * quotas. Every change is written to the store first and applied in memory after, so what the
 * API answers is always durable; revocations then wait for the data planes (setInvokeTokens).
 */
import type { InvokeTokenMsg } from '../../api/cluster.js';
import { anonymousAdmin, type Principal } from '../../api/tenancy.js';
import type { NamespaceQuotas, NamespaceRecord, TokenRecord, TokenScope } from '../../api/types.js';
import { bearerOf, newToken, sameDigest, sha256Hex, tokenId, TokenDigests } from '../../shared/secrets.js';
import type { Store } from '../store/store.js';

/** The id the bootstrap admin token (from `adminTokenFile`) is listed under. */
export const bootstrapTokenId = 'bootstrap';

/** What tenancy needs from the rest of the CP (the runtime seam and the store). */
export interface TenancyPorts {
  store: Pick<Store, 'putToken' | 'deleteToken' | 'putNamespace' | 'deleteNamespace'>;
  /** A change by the API: resolves once every DP applied it (a revoked token is refused everywhere). */
  setInvokeTokens(tokens: InvokeTokenMsg[]): Promise<void>;
  /**
   * A new leader's stored tokens: into the routing table at once. Nobody waits on an answer, and
   * the DPs it restored from the store are not connected to it yet; each gets them in its snapshot.
   */
  loadInvokeTokens(tokens: InvokeTokenMsg[]): void;
  setNamespaceQuotas(records: NamespaceRecord[], defaults: NamespaceQuotas): void;
  namespaceUsage(namespace: string): NamespaceQuotas;
  wallMs(): number;
}

export type RevokeResult = 'revoked' | 'not_found' | 'bootstrap';

export class Tenancy {
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly namespaces = new Map<string, NamespaceRecord>();
  private readonly bootstrap: TokenRecord | null;
  /** The bootstrap token's own id (in its text): DPs look tokens up by it, not by the listed 'bootstrap'. */
  private readonly bootstrapOwnId: string;
  private readonly digests = new TokenDigests();

  /**
   * `mode` 'none': every caller is the anonymous admin (loopback only, checked at start).
   * `bootstrapToken`: the admin token of `adminTokenFile`, null when auth is off.
   */
  constructor(
    readonly mode: 'token' | 'none',
    bootstrapToken: string | null,
    readonly quotaDefaults: NamespaceQuotas,
    private readonly ports: TenancyPorts,
  ) {
    this.bootstrap = bootstrapToken === null ? null : {
      id: bootstrapTokenId, sha256Hex: sha256Hex(bootstrapToken), scope: 'admin', namespace: '',
      description: 'bootstrap admin token (admin token file)', createdAtMs: 0,
    };
    this.bootstrapOwnId = bootstrapToken === null ? '' : (tokenId(bootstrapToken) ?? '');
  }

  /**
   * Takes over what the store holds (a new leader), then tells the core; the DPs get it when they
   * connect. It does not wait for DP acks: the DPs are redirected until the takeover is done.
   */
  load(tokens: TokenRecord[], namespaces: NamespaceRecord[]): void {
    this.tokens.clear();
    this.namespaces.clear();
    for (const t of tokens) this.tokens.set(t.id, t);
    for (const n of namespaces) this.namespaces.set(n.name, n);
    this.pushQuotas();
    this.ports.loadInvokeTokens(this.invokeTokens());
  }

  /** The caller of a request with this Authorization header; null means 401. */
  authenticate(header: string | string[] | undefined): Principal | null {
    if (this.mode === 'none') return anonymousAdmin;
    const token = bearerOf(header);
    const id = token === null ? null : tokenId(token);
    if (token === null || id === null) return null;
    const digest = this.digests.of(token);
    const candidates = [this.bootstrap, this.tokens.get(id) ?? null];
    for (const t of candidates) {
      if (t !== null && sameDigest(digest, t.sha256Hex)) return { tokenId: t.id, scope: t.scope, namespace: t.namespace };
    }
    return null;
  }

  /** Every token, the bootstrap one first, oldest first after it. */
  listTokens(): TokenRecord[] {
    const stored = [...this.tokens.values()].sort((a, b) => a.createdAtMs - b.createdAtMs || a.id.localeCompare(b.id));
    return this.bootstrap ? [this.bootstrap, ...stored] : stored;
  }

  async createToken(scope: TokenScope, namespace: string, description: string): Promise<{ record: TokenRecord; token: string }> {
    const { id, token } = newToken();
    const record: TokenRecord = { id, sha256Hex: sha256Hex(token), scope, namespace, description, createdAtMs: this.ports.wallMs() };
    await this.ports.store.putToken(record);
    this.tokens.set(id, record);
    await this.pushInvokeTokens();
    return { record, token };
  }

  /** Refused from the moment this resolves: by the API at once, by the DPs once they applied it. */
  async revokeToken(id: string): Promise<RevokeResult> {
    if (id === bootstrapTokenId) return 'bootstrap';
    if (!this.tokens.has(id)) return 'not_found';
    await this.ports.store.deleteToken(id);
    this.tokens.delete(id);
    await this.pushInvokeTokens();
    return 'revoked';
  }

  quotasOf(namespace: string): NamespaceQuotas {
    return this.namespaces.get(namespace)?.quotas ?? this.quotaDefaults;
  }

  /** Namespaces with their own quotas. */
  namespaceRecords(): NamespaceRecord[] {
    return [...this.namespaces.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  usage(namespace: string): NamespaceQuotas {
    return this.ports.namespaceUsage(namespace);
  }

  async setQuotas(namespace: string, quotas: NamespaceQuotas): Promise<void> {
    const record: NamespaceRecord = { name: namespace, quotas };
    await this.ports.store.putNamespace(record);
    this.namespaces.set(namespace, record);
    this.pushQuotas();
  }

  async resetQuotas(namespace: string): Promise<void> {
    await this.ports.store.deleteNamespace(namespace);
    this.namespaces.delete(namespace);
    this.pushQuotas();
  }

  private pushQuotas(): void {
    this.ports.setNamespaceQuotas(this.namespaceRecords(), this.quotaDefaults);
  }

  /** The DPs get every token that may invoke (admin, deploy, invoke); read tokens never can. */
  private pushInvokeTokens(): Promise<void> {
    return this.ports.setInvokeTokens(this.invokeTokens());
  }

  private invokeTokens(): InvokeTokenMsg[] {
    const invokers = this.listTokens().filter((t) => t.scope !== 'read');
    return invokers.map((t) => ({
      id: t === this.bootstrap ? this.bootstrapOwnId : t.id, sha256Hex: t.sha256Hex, scope: t.scope, namespace: t.namespace,
    }));
  }
}
