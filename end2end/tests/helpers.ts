import { expect, Page } from "@playwright/test";

// Shared by the specs: the admin that review.spec.ts's first test creates, and signing in.
export const ADMIN = { email: "admin@example.com", password: "correct horse battery" };

export async function signIn(page: Page, who: { email: string; password: string } = ADMIN) {
  await page.goto("/login");
  await page.fill("#email", who.email);
  await page.fill("#password", who.password);
  await page.click("#sign-in");
  await expect(page.locator("#signed-in-as")).toHaveText(who.email);
}
