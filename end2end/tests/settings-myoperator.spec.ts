import { test, expect } from "@playwright/test";
import { signIn } from "./helpers";

// Settings → Integrations → MyOperator (issue 15, item 4): an admin turns it on (a partial
// set is refused with what is missing), the key is never shown again, the section says which
// provider sends what, and clearing the account turns it off — with the keyboard-free clicks
// of an admin, JavaScript on. (It is turned off again: nothing in the suite may call out.)
const KEY = "myop-e2e-secret-key-7Hq";

test("MyOperator for notifications is turned on and off under Settings → Integrations", async ({ page }) => {
  await signIn(page);
  await page.goto("/settings/integrations");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const state = page.locator("#myoperator-state");
  await expect(state).toHaveAttribute("data-on", "false");
  await expect(state).toContainText("every message goes out through sandbox");
  await expect(page.locator("#myoperator")).toContainText("contractors' messages and delivery ticks need Twilio, Meta or the sandbox");

  await page.fill("#setting-myoperator_company_id", "co-e2e");
  await page.click("#save-myoperator");
  await expect(page.locator('.error-box[data-code="missing_setting"]')).toContainText("MyOperator needs MYOPERATOR_API_KEY, MYOPERATOR_PHONE_NUMBER_ID, MYOPERATOR_WABA_ID too");
  await page.fill("#setting-myoperator_api_key", KEY);
  await page.fill("#setting-myoperator_phone_number_id", "pn-e2e");
  await page.fill("#setting-myoperator_waba_id", "waba-e2e");
  await page.click("#save-myoperator");
  await expect(page.locator("#myoperator-saved")).toBeVisible();
  await expect(state).toHaveAttribute("data-on", "true");
  await expect(state).toContainText("through MyOperator");
  expect(await page.content()).not.toContain(KEY);
  await expect(page.locator("#setting-myoperator_api_key")).toHaveAttribute("placeholder", /set · …/);

  // Off again: the company, number and account cleared (the stored key is kept, unused).
  for (const f of ["company_id", "phone_number_id", "waba_id"]) await page.fill(`#setting-myoperator_${f}`, "");
  await page.click("#save-myoperator");
  await expect(state).toHaveAttribute("data-on", "false");
});
