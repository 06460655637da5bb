/**
 * TypeScript client of the abetworks CRM REST API.
 *
 * `schema.ts` is generated from `docs/openapi.yaml` (`npm run generate`); `CrmClient` wraps the
 * generated `openapi-fetch` client with what a generator leaves out.
 */
export {
  CrmClient,
  etagOf,
  type CrmClientOptions,
  type Entities,
  type Entity,
  type ListQuery,
  type LoginRequest,
  type Page,
  type RecordOf,
  type RegisterRequest,
  type TokenResponse,
  type Tokens,
  type Versioned,
} from "./client.js";
export { ProblemError, unwrap, type Problem, type ProblemField } from "./problem.js";
export type { components, operations, paths } from "./schema.js";
