import type { components } from "./schema.js";

/** The body of every error answer (RFC 9457 `application/problem+json`), as the spec types it. */
export type Problem = components["schemas"]["Problem"];
/** One offending input field of a validation problem (`errors[]`). */
export type ProblemField = components["schemas"]["ProblemField"];

/**
 * An `application/problem+json` answer, thrown by `CrmClient` and `unwrap`.
 *
 * Match on `type` (`urn:abetworks:crm:problem:<kind>`), on `code` for 403 and 409
 * (`not_draft`, `admin_only`…) and on `errors[].field` / `errors[].code` for 422, never on the
 * human-readable `title` or `detail`.
 */
export class ProblemError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** A stable URI naming the kind of problem. */
  readonly type: string;
  /** A short summary of the kind of problem. */
  readonly title: string;
  /** What went wrong with this request, when the server says. */
  readonly detail: string | undefined;
  /** Why a 409 or 403 happened, as a stable code. */
  readonly code: string | undefined;
  /** One entry per offending field (validation problems only; empty otherwise). */
  readonly errors: ProblemField[];
  /** The `Retry-After` header of a 429 or 503, in seconds, when sent. */
  readonly retryAfter: number | undefined;

  constructor(problem: Problem, retryAfter?: number) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
    this.name = "ProblemError";
    this.status = problem.status;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail ?? undefined;
    this.code = problem.code ?? undefined;
    this.errors = problem.errors ?? [];
    this.retryAfter = retryAfter;
  }

  /** The error of `field` with `code`, if the problem names one. */
  fieldError(field: string, code?: string): ProblemField | undefined {
    return this.errors.find((e) => e.field === field && (code === undefined || e.code === code));
  }

  /**
   * The error an answer stands for: its problem+json body, or (for an answer that is no
   * problem, e.g. from a proxy) a problem made up from its status and text.
   */
  static fromBody(response: Response, body: unknown): ProblemError {
    const retry = Number(response.headers.get("retry-after") ?? NaN);
    const retryAfter = Number.isFinite(retry) ? retry : undefined;
    if (isProblem(body)) {
      return new ProblemError({ ...body, status: body.status || response.status }, retryAfter);
    }
    const text = typeof body === "string" && body.length > 0 ? body.slice(0, 500) : undefined;
    return new ProblemError(
      {
        type: "about:blank",
        title: response.statusText || `HTTP ${response.status}`,
        status: response.status,
        detail: text ?? null,
      },
      retryAfter,
    );
  }

  /** Reads an error answer's body (once) and turns it into a `ProblemError`. */
  static async fromResponse(response: Response): Promise<ProblemError> {
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: kept as text
    }
    return ProblemError.fromBody(response, body);
  }
}

function isProblem(body: unknown): body is Problem {
  return (
    typeof body === "object" &&
    body !== null &&
    typeof (body as Problem).type === "string" &&
    typeof (body as Problem).title === "string"
  );
}

/**
 * The data of an `openapi-fetch` result, or its error thrown as a `ProblemError`:
 * `const me = unwrap(await crm.api.GET("/api/v1/me"))`.
 */
export function unwrap<D>(result: { data?: D; error?: unknown; response: Response }): D {
  if (result.error !== undefined || !result.response.ok) {
    throw ProblemError.fromBody(result.response, result.error);
  }
  return result.data as D;
}
