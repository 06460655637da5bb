// Smoke test of the client against the real example server on a fresh SQLite database.
//
// The server binary: `CRM_SERVER_BIN`, else `$CARGO_TARGET_DIR/debug/examples/server`, else
// `<repo>/target/debug/examples/server` (build it with `cargo build --example server`).

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

import { CrmClient, ProblemError, etagOf, unwrap } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url)); // clients/typescript/dist/test
const repo = resolve(here, "../../../..");
const DEMO_PASSWORD = "demo-password-for-the-smoke-test";

function serverBinary(): string {
  const explicit = process.env.CRM_SERVER_BIN;
  if (explicit) return explicit;
  const target = process.env.CARGO_TARGET_DIR ?? join(repo, "target");
  return join(target, "debug", "examples", "server");
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => ok(port));
    });
  });
}

let server: ChildProcess | undefined;
let workDir: string | undefined;
let baseUrl = "";
let serverLog = "";

before(async () => {
  const bin = serverBinary();
  assert.ok(existsSync(bin), `no server binary at ${bin}: run \`cargo build --example server\``);
  workDir = mkdtempSync(join(tmpdir(), "crm-ts-smoke-"));
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  server = spawn(bin, [], {
    cwd: workDir,
    env: {
      ...process.env,
      DATABASE_URL: `sqlite://${join(workDir, "crm.db")}`,
      CRM_JWT_SECRET: "a-smoke-test-secret-of-at-least-32-bytes",
      CRM_DEMO_PASSWORD: DEMO_PASSWORD,
      CRM_REGISTRATION: "on",
      PORT: String(port),
      // JSON lines, at info: the first-run message is one of them (checked below).
      CRM_LOG_FORMAT: "json",
      RUST_LOG: "info",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // For .ci/client-check, which stops the server should this test be killed before `after`.
  const pidFile = process.env.CRM_SMOKE_SERVER_PIDFILE;
  if (pidFile && server.pid !== undefined) writeFileSync(pidFile, String(server.pid));
  server.stdout?.on("data", (d: Buffer) => (serverLog += d.toString()));
  server.stderr?.on("data", (d: Buffer) => (serverLog += d.toString()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.exitCode !== null) {
      assert.fail(`the server exited (${server.exitCode}):\n${serverLog}`);
    }
    try {
      const r = await fetch(`${baseUrl}/readyz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) assert.fail(`the server was not ready in 60 s:\n${serverLog}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server?.once("exit", r));
    server.kill("SIGTERM");
    const timer = setTimeout(() => server?.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
  const pidFile = process.env.CRM_SMOKE_SERVER_PIDFILE;
  if (pidFile) rmSync(pidFile, { force: true });
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** A client whose refresh requests are counted. */
function countingClient(): { crm: CrmClient; refreshes: () => number } {
  let refreshes = 0;
  const crm = new CrmClient({
    baseUrl,
    fetch: (request) => {
      if (new URL(request.url).pathname === "/api/v1/auth/refresh") refreshes += 1;
      return fetch(request);
    },
  });
  return { crm, refreshes: () => refreshes };
}

test("with JSON logs every line the server writes is JSON, and none holds the demo password", () => {
  const lines = serverLog.split("\n").filter((l) => l.trim() !== "");
  assert.ok(
    lines.some((l) => l.includes("created the demo organization")),
    `no first-run event:\n${serverLog}`,
  );
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), line);
  assert.ok(!serverLog.includes(DEMO_PASSWORD), "the demo password was logged");
});

test("the demo admin signs in and reads itself through the generated client", async () => {
  const crm = new CrmClient({ baseUrl });
  const tokens = await crm.login({
    organization: "demo",
    email: "admin@demo.example",
    password: DEMO_PASSWORD,
  });
  assert.equal(tokens.token_type, "Bearer");
  const me = unwrap(await crm.api.GET("/api/v1/me"));
  assert.equal(me.user.email, "admin@demo.example");
});

test("a wrong password is a 401 ProblemError", async () => {
  const crm = new CrmClient({ baseUrl });
  await assert.rejects(
    crm.login({ organization: "demo", email: "admin@demo.example", password: "wrong-password" }),
    (e: unknown) => e instanceof ProblemError && e.status === 401,
  );
});

test("register, contacts, paging, a lead converted, a 422 problem, refresh", async (t) => {
  const { crm, refreshes } = countingClient();
  const slug = `smoke-${Date.now().toString(36)}`;
  const registered = await crm.register({
    organization_name: "Smoke Test Ltd",
    organization_slug: slug,
    name: "Sam Smoke",
    email: "sam@smoke.example",
    password: "correct horse battery",
  });
  assert.ok(registered.access_token.length > 0);

  await t.test("creates and lists contacts", async () => {
    const ada = await crm.create("contacts", { first_name: "Ada", email: "ada@smoke.example" });
    assert.equal(ada.first_name, "Ada");
    assert.equal(ada.version, 1);
    const again = await crm.get("contacts", ada.id);
    assert.equal(again.email, "ada@smoke.example");
    const page = await crm.list("contacts", { filter: { email: { contains: "ada@" } } });
    assert.deepEqual(
      page.data.map((c) => c.id),
      [ada.id],
    );
  });

  await t.test("a create repeated with its Idempotency-Key is answered once", async () => {
    const key = globalThis.crypto.randomUUID();
    const first = await crm.create("contacts", { first_name: "Once" }, { idempotencyKey: key });
    const second = await crm.create("contacts", { first_name: "Once" }, { idempotencyKey: key });
    assert.equal(second.id, first.id);
    const onces = await crm.list("contacts", { filter: { first_name: { eq: "Once" } } });
    assert.equal(onces.data.length, 1);
  });

  await t.test("If-Match: an update from a stale read is refused with 412", async () => {
    const bob = await crm.create("contacts", { first_name: "Bob" });
    const read = await crm.api.GET("/api/v1/contacts/{id}", { params: { path: { id: bob.id } } });
    assert.equal(read.response.headers.get("etag"), etagOf(bob), "the ETag is the version");
    const renamed = await crm.update("contacts", bob, { last_name: "Builder" });
    assert.equal(renamed.version, bob.version + 1);
    await assert.rejects(
      crm.update("contacts", bob, { last_name: "Stale" }),
      (e: unknown) => e instanceof ProblemError && e.status === 412,
    );
    await assert.rejects(
      crm.delete("contacts", bob),
      (e: unknown) => e instanceof ProblemError && e.status === 412,
    );
    await crm.delete("contacts", renamed);
    await assert.rejects(
      crm.get("contacts", bob.id),
      (e: unknown) => e instanceof ProblemError && e.status === 404,
    );
  });

  await t.test("the iterator pages through a list by next_cursor", async () => {
    const created = new Set<string>();
    for (let i = 0; i < 7; i++) {
      const c = await crm.create("accounts", { name: `Paged ${i}` });
      created.add(c.id);
    }
    const first = await crm.list("accounts", { limit: 3 });
    assert.equal(first.data.length, 3);
    assert.notEqual(first.next_cursor, null);
    const seen: string[] = [];
    let requests = 0;
    const counted = new CrmClient({
      baseUrl,
      tokens: crm.currentTokens,
      fetch: (r) => {
        requests += 1;
        return fetch(r);
      },
    });
    for await (const account of counted.iterate("accounts", { limit: 3, sort: "name" })) {
      seen.push(account.id);
    }
    assert.equal(seen.length, 7);
    assert.deepEqual(new Set(seen), created);
    assert.equal(requests, 3, "7 accounts in pages of 3 are 3 requests");
  });

  await t.test("a lead is converted", async () => {
    const lead = await crm.create("leads", {
      first_name: "Lena",
      last_name: "Lead",
      company: "Lead Corp",
      email: "lena@leadcorp.example",
    });
    const done = await crm.convertLead(lead.id, {
      account: "create",
      contact: "create",
      opportunity: { name: "Lead Corp deal", amount_minor: 120000, currency: "EUR" },
    });
    assert.equal(done.lead.status, "converted");
    assert.equal(done.account.name, "Lead Corp");
    assert.equal(done.contact.email, "lena@leadcorp.example");
    assert.equal(done.opportunity?.name, "Lead Corp deal");
    await assert.rejects(
      crm.convertLead(lead.id, { account: "create", contact: "create" }),
      (e: unknown) => e instanceof ProblemError && e.status === 409 && e.code === "already_converted",
    );
  });

  await t.test("a 422 is a ProblemError with its field errors", async () => {
    const err = await crm.create("contacts", { email: "not an email" }).then(
      () => assert.fail("an invalid email was accepted"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ProblemError, `not a ProblemError: ${String(err)}`);
    assert.equal(err.status, 422);
    assert.match(err.type, /^urn:abetworks:crm:problem:/);
    const field = err.fieldError("email");
    assert.ok(field, `no error for email in ${JSON.stringify(err.errors)}`);
    assert.ok(field.code.length > 0);
    // The generated client reports the same problem, typed, without throwing.
    const raw = await crm.api.POST("/api/v1/contacts", { body: { email: "not an email" } });
    assert.equal(raw.response.status, 422);
    assert.equal(raw.error?.errors?.[0]?.field, "email");
  });

  await t.test("a rejected access token is refreshed once, also for concurrent requests", async () => {
    const before = crm.currentTokens;
    assert.ok(before);
    // An access token the server refuses (as an expired one would be).
    crm.setTokens({ ...before, accessToken: "not-a-valid-token" });
    const pages = await Promise.all([
      crm.list("contacts", { limit: 1 }),
      crm.list("accounts", { limit: 1 }),
      crm.api.GET("/api/v1/me").then(unwrap),
    ]);
    assert.equal(pages.length, 3);
    assert.equal(refreshes(), 1, "concurrent 401s share one refresh");
    const afterRefresh = crm.currentTokens;
    assert.ok(afterRefresh);
    assert.notEqual(afterRefresh.refreshToken, before.refreshToken, "the refresh token rotated");
    assert.notEqual(afterRefresh.accessToken, "not-a-valid-token");
    // The new access token works without another refresh.
    await crm.list("contacts", { limit: 1 });
    assert.equal(refreshes(), 1);
  });

  await t.test("logout ends the session: no token, and the refresh token is refused", async () => {
    const last = crm.currentTokens;
    assert.ok(last);
    await crm.logout();
    assert.equal(crm.currentTokens, undefined);
    await assert.rejects(
      crm.list("contacts"),
      (e: unknown) => e instanceof ProblemError && e.status === 401,
    );
    const reused = await crm.api.POST("/api/v1/auth/refresh", {
      body: { refresh_token: last.refreshToken },
    });
    assert.equal(reused.response.status, 401);
    assert.equal(refreshes(), 2, "only the one above: a 401 without a session is not retried");
  });
});
