import createClient, { type Client } from "openapi-fetch";

import { ProblemError, unwrap } from "./problem.js";
import type { components, paths } from "./schema.js";

type S = components["schemas"];

/** Tokens issued at sign-in and refresh. */
export type TokenResponse = S["TokenResponse"];
/** Sign-in: organization slug, email and password. */
export type LoginRequest = S["LoginRequest"];
/** Sign-up: a new organization and its first company admin. */
export type RegisterRequest = S["RegisterRequest"];

/** The record types of each entity route: what is read, created and patched. */
export interface Entities {
  accounts: { record: S["Record_Account"]; create: S["NewAccount"]; patch: S["AccountPatch"] };
  contacts: { record: S["Record_Contact"]; create: S["NewContact"]; patch: S["ContactPatch"] };
  leads: { record: S["Record_Lead"]; create: S["NewLead"]; patch: S["LeadPatch"] };
  opportunities: {
    record: S["Record_Opportunity"];
    create: S["NewOpportunity"];
    patch: S["OpportunityPatch"];
  };
  invoices: { record: S["Record_Invoice"]; create: S["NewInvoice"]; patch: S["InvoicePatch"] };
  activities: {
    record: S["Record_Activity"];
    create: S["NewActivity"];
    patch: S["ActivityPatch"];
  };
}
/** An entity route: `contacts`, `leads`… */
export type Entity = keyof Entities;
/** A stored record of entity `E`. */
export type RecordOf<E extends Entity> = Entities[E]["record"];
/** One page of a list: its rows and the cursor of the next page (`null` on the last). */
export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** What a list asks for (the query parameters of `GET /{entity}`). */
export interface ListQuery {
  /** Page size, 1-100 (default 50). */
  limit?: number;
  /** `next_cursor` of the previous page. */
  cursor?: string;
  /** A sortable field; `-field` for descending. */
  sort?: string;
  /** `true`, `false` (default) or `only` (the trash). */
  include_deleted?: "true" | "false" | "only";
  /**
   * Filters by field and operator, sent as `filter[field][op]=value`:
   * `{ email: { contains: "acme" } }`. Ops: eq, ne, lt, lte, gt, gte, in and between
   * (comma-separated), contains, starts_with, is_null, exists.
   */
  filter?: Record<string, Record<string, string | number | boolean>>;
}

/** A record as far as a conditional write needs it: its id and the version read. */
export interface Versioned {
  id: string;
  version: number;
}

/** The access and refresh token a client holds. */
export interface Tokens {
  accessToken: string;
  refreshToken: string;
}

/** How a `CrmClient` reaches the server. */
export interface CrmClientOptions {
  /** The server's origin, e.g. `https://crm.example.com` (paths include `/api/v1`). */
  baseUrl: string;
  /** Tokens from an earlier session, if any. */
  tokens?: Tokens;
  /** Called with every new pair (sign-in and each refresh), e.g. to store them. */
  onTokens?: (tokens: Tokens | undefined) => void;
  /** The `fetch` to use (default `globalThis.fetch`). */
  fetch?: (request: Request) => Promise<Response>;
}

/** The `ETag` of a record for `If-Match`: its version, quoted (`"3"`). */
export function etagOf(record: Pick<Versioned, "version">): string {
  return `"${record.version}"`;
}

const AUTH_PREFIX = "/api/v1/auth/";

/**
 * The abetworks CRM API: the generated, fully typed `openapi-fetch` client (`api`) with sign-in
 * and refresh, plus the few helpers a generator cannot write — cursor iteration,
 * `Idempotency-Key` on creates, `If-Match` on writes, and problem+json as `ProblemError`.
 *
 * Every request through `api` carries the access token; a 401 trades the refresh token for a
 * new pair once (concurrent 401s wait for the same refresh, as the refresh token is single use)
 * and repeats the request.
 */
export class CrmClient {
  /** The generated client: every path and operation of `docs/openapi.yaml`, typed. */
  readonly api: Client<paths>;
  private tokens: Tokens | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly fetchImpl: (request: Request) => Promise<Response>;
  private readonly onTokens: ((tokens: Tokens | undefined) => void) | undefined;
  private readonly baseUrl: string;

  constructor(options: CrmClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.tokens = options.tokens;
    this.onTokens = options.onTokens;
    this.fetchImpl = options.fetch ?? ((request) => globalThis.fetch(request));
    this.api = createClient<paths>({
      baseUrl: this.baseUrl,
      fetch: (request) => this.send(request),
    });
  }

  /** The tokens held now, if signed in. */
  get currentTokens(): Tokens | undefined {
    return this.tokens;
  }

  /** Replaces the tokens held (e.g. restored from storage), or forgets them. */
  setTokens(tokens: Tokens | undefined): void {
    this.tokens = tokens;
    this.onTokens?.(tokens);
  }

  /** Signs in (`POST auth/login`) and keeps the tokens. */
  async login(body: LoginRequest): Promise<TokenResponse> {
    const tokens = unwrap(await this.api.POST("/api/v1/auth/login", { body }));
    this.keep(tokens);
    return tokens;
  }

  /** Creates an organization and its first company admin (`POST auth/register`), signed in. */
  async register(body: RegisterRequest): Promise<TokenResponse> {
    const tokens = unwrap(await this.api.POST("/api/v1/auth/register", { body }));
    this.keep(tokens);
    return tokens;
  }

  /**
   * Trades the refresh token for a new pair now. Concurrent callers share one request: the
   * refresh token is single use, and presenting a used one signs the session out everywhere.
   */
  refresh(): Promise<void> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** Signs out (revokes the refresh token's family) and forgets the tokens. */
  async logout(): Promise<void> {
    const refresh_token = this.tokens?.refreshToken;
    this.setTokens(undefined);
    if (refresh_token !== undefined) {
      unwrap(await this.api.POST("/api/v1/auth/logout", { body: { refresh_token } }));
    }
  }

  /** One page of `entity` (`GET /{entity}`). */
  async list<E extends Entity>(entity: E, query: ListQuery = {}): Promise<Page<RecordOf<E>>> {
    const url = `/api/v1/${entity}${queryString(query)}`;
    return (await this.json("GET", url)) as Page<RecordOf<E>>;
  }

  /**
   * Every record of `entity` the query selects, page after page (following `next_cursor`),
   * fetching the next page only when the loop gets there:
   * `for await (const c of crm.iterate("contacts", { limit: 100 })) …`.
   */
  async *iterate<E extends Entity>(
    entity: E,
    query: ListQuery = {},
  ): AsyncGenerator<RecordOf<E>, void, undefined> {
    let cursor = query.cursor;
    for (;;) {
      const page = await this.list(entity, { ...query, cursor });
      yield* page.data;
      if (page.next_cursor === null || page.next_cursor === undefined) return;
      cursor = page.next_cursor;
    }
  }

  /** One record (`GET /{entity}/{id}`). */
  async get<E extends Entity>(entity: E, id: string): Promise<RecordOf<E>> {
    return (await this.json("GET", `/api/v1/${entity}/${encodeURIComponent(id)}`)) as RecordOf<E>;
  }

  /**
   * Creates a record (`POST /{entity}`) with an `Idempotency-Key` (a new UUID unless given):
   * repeating the call with the same key after a lost answer replays the first answer instead
   * of creating a second record.
   */
  async create<E extends Entity>(
    entity: E,
    body: Entities[E]["create"],
    options: { idempotencyKey?: string } = {},
  ): Promise<RecordOf<E>> {
    const key = options.idempotencyKey ?? globalThis.crypto.randomUUID();
    return (await this.json("POST", `/api/v1/${entity}`, body, {
      "idempotency-key": key,
    })) as RecordOf<E>;
  }

  /**
   * Patches the record read (`PATCH /{entity}/{id}`) with `If-Match` set to its ETag: a
   * `ProblemError` with status 412 when someone changed it since.
   */
  async update<E extends Entity>(
    entity: E,
    record: Versioned,
    patch: Entities[E]["patch"],
  ): Promise<RecordOf<E>> {
    return (await this.json(
      "PATCH",
      `/api/v1/${entity}/${encodeURIComponent(record.id)}`,
      patch,
      { "if-match": etagOf(record) },
    )) as RecordOf<E>;
  }

  /**
   * Deletes the record read (`DELETE /{entity}/{id}`; to the trash, or for good with
   * `permanent`) with `If-Match` set to its ETag (412 when it changed since).
   */
  async delete(
    entity: Entity,
    record: Versioned,
    options: { permanent?: boolean } = {},
  ): Promise<void> {
    const query = options.permanent ? "?permanent=true" : "";
    await this.json("DELETE", `/api/v1/${entity}/${encodeURIComponent(record.id)}${query}`, undefined, {
      "if-match": etagOf(record),
    });
  }

  /** Converts a lead into an account, a contact and optionally an opportunity. */
  async convertLead(id: string, body: S["ConvertLead"]): Promise<S["Conversion"]> {
    return unwrap(
      await this.api.POST("/api/v1/leads/{id}/convert", { params: { path: { id } }, body }),
    );
  }

  private keep(tokens: TokenResponse): void {
    this.setTokens({ accessToken: tokens.access_token, refreshToken: tokens.refresh_token });
  }

  private async doRefresh(): Promise<void> {
    const refresh_token = this.tokens?.refreshToken;
    if (refresh_token === undefined) {
      throw new ProblemError({
        type: "about:blank",
        title: "Not signed in",
        status: 401,
        detail: "no refresh token to trade",
      });
    }
    const result = await this.api.POST("/api/v1/auth/refresh", { body: { refresh_token } });
    if (result.error !== undefined || !result.response.ok) {
      // Unknown, expired, used or revoked: the session is over.
      this.setTokens(undefined);
    }
    this.keep(unwrap(result));
  }

  /** A request of the hand-written helpers: JSON in, JSON out, problems thrown. */
  private async json(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<unknown> {
    const init: RequestInit = { method, headers: { accept: "application/json", ...headers } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)["content-type"] = "application/json";
    }
    const response = await this.send(new Request(`${this.baseUrl}${path}`, init));
    if (!response.ok) throw await ProblemError.fromResponse(response);
    if (response.status === 204) return undefined;
    return response.json();
  }

  /** Sends a request with the access token; on 401, refreshes once and repeats it. */
  private async send(request: Request): Promise<Response> {
    // `includes`: the API may be mounted below a prefix of the base URL.
    const isAuthRoute = new URL(request.url).pathname.includes(AUTH_PREFIX);
    const token = this.tokens?.accessToken;
    if (isAuthRoute || token === undefined || request.headers.has("authorization")) {
      return this.fetchImpl(request);
    }
    const retry = request.clone();
    request.headers.set("authorization", `Bearer ${token}`);
    const response = await this.fetchImpl(request);
    if (response.status !== 401 || this.tokens?.refreshToken === undefined) return response;
    // Another request may have refreshed meanwhile: use its token rather than the refresh
    // token again.
    if (this.tokens.accessToken === token) await this.refresh();
    const fresh = this.tokens?.accessToken;
    if (fresh === undefined) return response;
    await response.body?.cancel();
    retry.headers.set("authorization", `Bearer ${fresh}`);
    return this.fetchImpl(retry);
  }
}

/** `?limit=…&filter[field][op]=…` of a list query. */
function queryString(query: ListQuery): string {
  const params = new URLSearchParams();
  if (query.limit !== undefined) params.set("limit", String(query.limit));
  if (query.cursor !== undefined) params.set("cursor", query.cursor);
  if (query.sort !== undefined) params.set("sort", query.sort);
  if (query.include_deleted !== undefined) params.set("include_deleted", query.include_deleted);
  for (const [field, ops] of Object.entries(query.filter ?? {})) {
    for (const [op, value] of Object.entries(ops)) {
      params.append(`filter[${field}][${op}]`, String(value));
    }
  }
  const s = params.toString();
  return s ? `?${s}` : "";
}
