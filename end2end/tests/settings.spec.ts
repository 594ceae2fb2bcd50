import { test, expect, Page } from "@playwright/test";
import { BRIDGE_KEY } from "../playwright.config";
import { ADMIN, E2E_SECRETS, signIn } from "./helpers";

// Settings: the feedback template edited with its live preview is what the next "Mark
// incomplete" sends; a user links their phone through the sandbox phone with a VERIFY code;
// an API key is created, used and revoked; an admin switches the WhatsApp provider and back.
// Runs after review.spec.ts (which created the admin).
test.describe.configure({ mode: "serial" });

test("templates: live preview, a broken edit is refused, the saved feedback is what Mark incomplete sends", async ({ page, request }) => {
  await signIn(page);
  await page.goto("/settings/templates?name=drop_feedback");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(page.locator("#template-preview")).toContainText("Step 3 – Cable entry outside");

  // The preview follows the typing; an unknown variable is shown, not saved.
  const body = page.locator("#template-body");
  await body.fill("Please fix {{ drop_numbr }}");
  await expect(page.locator("#template-preview-error")).toContainText("variable");
  await body.fill("Please fix {{ drop_number }}:\n{% for s in steps %}- step {{ s.number }} ({{ s.name }})\n{% endfor %}Then send {{ drop_number }} DONE");
  await expect(page.locator("#template-preview")).toContainText("Please fix DR12345678:");
  await expect(page.locator("#template-preview")).toContainText("- step 7 (Power meter reading)");
  await page.click("#save-template");
  await expect(page.locator("#template-saved")).toBeVisible();

  // A new drop (registered through the API) gets that text when a reviewer marks it incomplete.
  const drop = "DR77700002";
  const res = await request.post("/api/submit-installation", {
    headers: { "X-API-Key": BRIDGE_KEY },
    data: { drop_number: drop, contractor_number: "+27825550002", project_name: "Velo Test" },
  });
  expect(res.status()).toBe(200);
  await page.goto(`/drops/${drop}`);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.click("#reject-3 summary");
  await page.check("#v-3-missing");
  await page.selectOption("#reason-3", "no_photo");
  await page.click("#save-3");
  await expect(page.locator("#step-3")).toHaveAttribute("data-verdict", "missing");
  await page.click("#incomplete-panel summary");
  await expect(page.locator("#feedback-preview")).toContainText(`Please fix ${drop}:`);
  await expect(page.locator("#feedback-preview")).toContainText("- step 3 (Cable entry outside)");
  await page.click("#confirm-incomplete");
  await expect(page.locator("#drop-number .status-badge")).toHaveText("Incomplete");
  const msgs = await request.get(`/api/v1/messages?drop=${drop}&direction=out`, { headers: { "X-API-Key": BRIDGE_KEY } });
  const sent = (await msgs.json()).messages;
  expect(sent[0].body).toContain(`Please fix ${drop}:`);
  expect(sent[0].template).toBe("drop_feedback");
});

test("phone linking: the code sent as VERIFY from the sandbox phone links the number", async ({ page }) => {
  await signIn(page);
  const number = "+27825550003";
  await page.goto("/settings/integrations");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(page.locator("#active-provider")).toHaveText("sandbox");
  await page.fill("#link-phone", "not a number");
  await page.click("#start-link");
  await expect(page.locator(".error-box")).toContainText("not a valid international phone number");
  // The code comes through the browser's decoding of the server function's error too.
  await expect(page.locator(".error-box")).toHaveAttribute("data-code", "invalid_phone");
  await page.fill("#link-phone", number);
  await page.click("#start-link");
  const verify = (await page.locator("#link-code-value").textContent())!.trim();
  expect(verify).toMatch(/^VERIFY \d{6}$/);

  const phone = await page.context().newPage();
  await phone.goto(`/sandbox?phone=${encodeURIComponent(number)}`);
  await phone.fill("#sandbox-text", verify);
  await phone.click("#sandbox-send");
  await expect(async () => {
    await phone.reload();
    await expect(phone.locator("#sandbox-chat .sandbox-received").filter({ hasText: "now linked to admin@example.com" })).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 20_000 });

  await page.reload();
  await expect(page.locator("#link-status")).toHaveAttribute("data-state", "verified");
  await expect(page.locator("#link-status")).toContainText(number);
  await page.click("#unlink");
  await expect(page.locator("#start-link")).toBeVisible();
});

test("API keys: created with scopes, shown once, used, revoked", async ({ page, request }) => {
  await signIn(page);
  await page.goto("/settings/api-keys");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.fill("#key-name", "planning system");
  await page.check("#scope-read");
  await page.click("#create-key");
  const key = (await page.locator("#new-api-key-value").textContent())!.trim();
  expect(key).toMatch(/^dc_[0-9a-f]{40}$/);
  const row = page.locator('tr[data-key="planning system"]');
  await expect(row).toContainText("read");

  const ok = await request.get("/api/v1/messages", { headers: { "X-API-Key": key } });
  expect(ok.status()).toBe(200);
  const refused = await request.post("/send", { headers: { "X-API-Key": key }, data: { to: "+27825550003", message: "hi" } });
  expect(refused.status()).toBe(403);
  expect((await refused.json()).error).toBe("insufficient_scope");

  await page.reload();
  await expect(page.locator("#new-api-key")).toHaveCount(0);
  await expect(row).not.toContainText("never");
  await row.getByRole("button", { name: "Revoke" }).click();
  await expect(row).toContainText("revoked");
  const gone = await request.get("/api/v1/messages", { headers: { "X-API-Key": key } });
  expect(gone.status()).toBe(401);
});

test("integrations: an admin switches the provider, sees its webhook URLs, and sends a test message", async ({ page, baseURL }) => {
  await signIn(page);
  await page.goto("/settings/integrations");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(page.locator("#active-provider")).toHaveText("sandbox");
  // The API bases come from the server's environment (a closed local port in this run).
  await expect(page.locator("#setting-twilio_api_base")).toHaveText("http://127.0.0.1:9");

  // A token is required: refused with the reason, nothing changes.
  await page.check("#provider-twilio");
  await page.fill("#setting-twilio_account_sid", "AC0123456789abcdef0123456789abcdef");
  await page.fill("#setting-twilio_whatsapp_number", "+1 415 523 8886");
  await page.click("#save-provider");
  await expect(page.locator("#provider .error-box")).toContainText("TWILIO_AUTH_TOKEN is required");
  await expect(page.locator("#active-provider")).toHaveText("sandbox");

  await page.fill("#setting-twilio_auth_token", E2E_SECRETS.twilioToken);
  await page.click("#save-provider");
  await expect(page.locator("#active-provider")).toHaveText("twilio");
  await expect(page.locator("#provider-saved")).toBeVisible();
  await expect(page.locator("#webhook-urls")).toContainText(`${baseURL}/webhooks/twilio`);
  await expect(page.locator("#webhook-urls")).toContainText(`${baseURL}/webhooks/twilio/status`);
  // The token is never shown back: the box is empty, its placeholder shows the last four.
  await expect(page.locator("#setting-twilio_auth_token")).toHaveValue("");
  await expect(page.locator("#setting-twilio_auth_token")).toHaveAttribute("placeholder", /set · …9k2T/);
  await expect(page.locator("#setting-twilio_whatsapp_number")).toHaveValue("+14155238886");
  await page.reload();
  expect(await page.content()).not.toContain(E2E_SECRETS.twilioToken);

  await page.check("#provider-meta");
  await page.fill("#setting-meta_access_token", E2E_SECRETS.metaToken);
  await page.fill("#setting-meta_phone_number_id", "10987654321");
  await page.fill("#setting-meta_app_secret", E2E_SECRETS.metaAppSecret);
  await page.fill("#setting-meta_verify_token", "e2e-verify-token");
  await page.click("#save-provider");
  await expect(page.locator("#active-provider")).toHaveText("meta");
  await expect(page.locator("#webhook-urls")).toContainText(`${baseURL}/webhooks/meta`);
  await expect(page.locator("#webhook-urls")).not.toContainText("/webhooks/twilio");
  await page.screenshot({ path: "test-results/integrations-meta.png", fullPage: true });

  // Back to the sandbox: the test message reaches the simulated phone.
  await page.check("#provider-sandbox");
  await page.click("#save-provider");
  await expect(page.locator("#active-provider")).toHaveText("sandbox");
  await page.fill("#test-phone", "+27825550009");
  await page.click("#send-test");
  await expect(page.locator("#test-result")).toContainText("To +27825550009 through sandbox");
  await expect(page.locator("#test-result")).not.toHaveAttribute("data-status", "failed");
  const phone = await page.context().newPage();
  await phone.goto(`/sandbox?phone=${encodeURIComponent("+27825550009")}`);
  await expect(phone.locator("#sandbox-chat .sandbox-received").filter({ hasText: "Test message from Dropcheck through sandbox" })).toBeVisible();
});

test("projects: Wait for DONE is saved per project, with JavaScript and without", async ({ page, browser }) => {
  await signIn(page);
  await page.goto("/settings/projects");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const velo = page.locator('section[data-project="Velo Test"]');
  await expect(velo).toContainText("12 steps");
  const box = velo.locator('input[name="wait_for_done"]');
  await expect(box).not.toBeChecked();
  await box.check();
  await Promise.all([
    page.waitForResponse((r) => r.url().includes("/rpc/save_project") && r.ok()),
    velo.getByRole("button", { name: "Save project" }).click(),
  ]);
  await page.reload();
  await expect(page.locator('section[data-project="Velo Test"] input[name="wait_for_done"]')).toBeChecked();

  // Photo checks: a screenshot step and a stricter darkness flag; a step the project lacks is refused.
  const checks = page.locator('section[data-project="Velo Test"] details.photo-checks');
  await expect(checks.locator("summary")).toHaveText("Photo checks: the default thresholds");
  await checks.locator("summary").click();
  await checks.locator('input[name="screenshot_steps"]').fill("11, 13");
  await checks.getByRole("button", { name: "Save photo checks" }).click();
  await expect(page.locator('.error-box[data-code="invalid_step"]')).toContainText("no step 13");
  await checks.locator('input[name="screenshot_steps"]').fill("11");
  await checks.locator('input[name="dark_flag"]').fill("50");
  await Promise.all([
    page.waitForResponse((r) => r.url().includes("/rpc/save_photo_checks") && r.ok()),
    checks.getByRole("button", { name: "Save photo checks" }).click(),
  ]);
  await page.reload();
  await expect(checks.locator("summary")).toHaveText("Photo checks: this project's thresholds");
  await expect(checks.locator('input[name="screenshot_steps"]')).toHaveValue("11");
  await expect(checks.locator('input[name="dark_flag"]')).toHaveValue("50");

  // The same form without JavaScript: unticked and saved, the setting is off again.
  const ctx = await browser.newContext({ javaScriptEnabled: false });
  const plain = await ctx.newPage();
  await signIn(plain);
  await plain.goto("/settings/projects");
  const form = plain.locator('section[data-project="Velo Test"]');
  await form.locator('input[name="wait_for_done"]').uncheck();
  await form.getByRole("button", { name: "Save project" }).click();
  await plain.goto("/settings/projects");
  await expect(plain.locator('section[data-project="Velo Test"] input[name="wait_for_done"]')).not.toBeChecked();
  await ctx.close();
});
