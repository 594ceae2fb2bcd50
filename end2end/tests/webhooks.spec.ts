import { test, expect } from "@playwright/test";
import { signIn } from "./helpers";

// Settings → Webhooks as an admin uses it: a plain-http address is refused with the reason
// (this server does not allow private or http addresses), an https one is added and its
// signing secret shown once, a new secret is shown once, the endpoint's (empty) delivery log
// opens, and it is removed. No event type here is ever sent, so nothing leaves the machine.

test("an admin adds a webhook endpoint, sees its secret once, rotates it and removes it", async ({ page }) => {
  await signIn(page);
  await page.click("summary:has-text('Settings')");
  await page.click("a[href='/settings/webhooks']");
  await expect(page).toHaveURL(/\/settings\/webhooks$/);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.fill("#webhook-url", "http://127.0.0.1:9/hook");
  await page.fill("#webhook-types", "e2e.never_sent");
  await page.click("#create-webhook");
  await expect(page.locator(".error-box")).toContainText("use https");
  await page.fill("#webhook-url", "https://erp.example.com/hooks/dropcheck");
  await page.click("#create-webhook");
  const secret = page.locator("#new-webhook-secret-value");
  await expect(secret).toHaveText(/^whsec_[A-Za-z0-9+/=]{40,}$/);
  const first = await secret.textContent();
  const row = page.locator('#webhook-endpoints tr[data-endpoint="https://erp.example.com/hooks/dropcheck"]');
  await expect(row).toContainText("e2e.never_sent");
  await expect(row).toContainText("on");
  await page.reload();
  await expect(page.locator("#new-webhook-secret")).toHaveCount(0);
  expect(await page.content()).not.toContain(first!);

  await row.getByRole("button", { name: "New secret" }).click();
  await expect(secret).toHaveText(/^whsec_/);
  expect(await secret.textContent()).not.toBe(first);
  await expect(row).toContainText("the old secret signs too until");

  await row.locator("a").click();
  await expect(page.locator("#webhook-deliveries")).toContainText("Nothing sent yet.");
  await page.locator('#webhook-endpoints tr[data-endpoint="https://erp.example.com/hooks/dropcheck"]').getByRole("button", { name: "Remove" }).click();
  await expect(page.locator('#webhook-endpoints tr[data-endpoint="https://erp.example.com/hooks/dropcheck"]')).toHaveCount(0);
});
