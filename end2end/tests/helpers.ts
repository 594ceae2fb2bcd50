import { expect, Page } from "@playwright/test";

// Shared by the specs: the admin that review.spec.ts's first test creates, and signing in.
export const ADMIN = { email: "admin@example.com", password: "correct horse battery" };

// Provider credentials the settings test enters; none may appear in a page or the log.
export const E2E_SECRETS = {
  twilioToken: "e2e-twilio-auth-token-9k2T",
  metaToken: "EAAGe2e-meta-access-token-77",
  metaAppSecret: "e2e-meta-app-secret-55",
  visionKey: "sk-e2e-vision-key-4Qw8",
};

export async function signIn(page: Page, who: { email: string; password: string } = ADMIN) {
  await page.goto("/login");
  await page.fill("#email", who.email);
  await page.fill("#password", who.password);
  await page.click("#sign-in");
  await expect(page.locator("#signed-in-as")).toHaveText(who.email);
}

/// Sends from the sandbox phone: text, generated photos (`spoil`: the last one "dark" or "blurred").
export async function send(phone: Page, text: string, photos = 0, spoil = "") {
  await phone.fill("#sandbox-text", text);
  await phone.selectOption("#sandbox-photos", String(photos));
  await phone.selectOption("#sandbox-spoil", spoil);
  await phone.click("#sandbox-send");
  await expect(phone).toHaveURL(/\/sandbox\?phone=/);
}

/// The sandbox page is a plain server-rendered chat; replies arrive a moment later.
export async function expectChat(phone: Page, text: string | RegExp) {
  await expect(async () => {
    await phone.reload();
    await expect(phone.locator("#sandbox-chat .sandbox-received").filter({ hasText: text }).first()).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 20_000 });
}
