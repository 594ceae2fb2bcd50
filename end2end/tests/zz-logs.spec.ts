import { test, expect } from "@playwright/test";
import { readFileSync } from "node:fs";
import { BRIDGE_KEY, SERVER_LOG } from "../playwright.config";
import { ADMIN, E2E_SECRETS } from "./helpers";

// Runs last: the server's whole log of this run holds no secret, no verification code and
// no password (the runs before signed in, created API keys, linked a phone with a code).
test("the server's log holds no secret, verification code or password", async () => {
  const log = readFileSync(SERVER_LOG, "utf8");
  expect(log.split("\n").length).toBeGreaterThan(50);
  expect(log).toContain("phone link started");
  expect(log).toContain("integration settings saved");
  for (const secret of [ADMIN.password, "reviewer password", BRIDGE_KEY, ...Object.values(E2E_SECRETS)]) {
    expect(log.includes(secret), `the log contains ${secret.slice(0, 4)}…`).toBe(false);
  }
  for (const pattern of [/dc_[0-9a-f]{40}/, /VERIFY\s+\d{6}/i, /"code"\s*:\s*"\d{6}"/, /\$argon2id\$/, /sk_|Bearer [A-Za-z0-9]/]) {
    expect(log.match(pattern)?.[0] ?? null, `${pattern}`).toBeNull();
  }
});
