import { test, expect, Page } from "@playwright/test";
import { signIn } from "./helpers";

// The Content-Security-Policy is strict (scripts only from our origin or with the page's
// nonce, wasm allowed, no framing): every page must still hydrate under it, lazy routes
// included, with not one violation; and no other site may frame a page.

const PAGES = [
  "/", "/drops/DR10000001", "/messages", "/sandbox", "/events", "/stats", "/settings/projects",
  "/settings/users", "/settings/templates", "/settings/api-keys", "/settings/integrations",
  "/automations", "/automations/1", "/automations/new", "/settings/webhooks", "/contacts", "/contacts/import",
  "/contacts/%2B27640412391", "/broadcasts",
];

async function watchViolations(page: Page): Promise<string[]> {
  const seen: string[] = [];
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) seen.push(m.text());
  });
  page.on("pageerror", (e) => seen.push(`pageerror: ${e.message}`));
  await page.exposeFunction("__cspViolation", (v: string) => seen.push(v));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) =>
      (window as any).__cspViolation(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return seen;
}

test("every page hydrates under the strict CSP, with no violation", async ({ page }) => {
  const violations = await watchViolations(page);
  await signIn(page);
  for (const path of PAGES) {
    const res = await page.goto(path);
    const csp = res!.headers()["content-security-policy"] ?? "";
    expect(csp, path).toContain("frame-ancestors 'none'");
    expect(csp, path).toMatch(/script-src 'self' 'nonce-[^']+' 'wasm-unsafe-eval'/);
    expect(res!.headers()["x-content-type-options"], path).toBe("nosniff");
    await expect(page.locator("body"), path).toHaveAttribute("data-hydrated", "true");
  }
  // A client-side navigation into a lazy route loads its chunk under the policy too.
  await page.goto("/");
  await page.click("summary:has-text('Settings')");
  await page.click("a[href='/settings/templates']");
  await expect(page).toHaveURL(/\/settings\/templates$/);
  await expect(page.locator("h1")).toContainText(/templates/i);
  expect(violations).toEqual([]);
});

test("another site cannot frame a page", async ({ page, baseURL }) => {
  await signIn(page);
  const blocked: string[] = [];
  page.on("console", (m) => blocked.push(m.text()));
  await page.goto("about:blank");
  await page.setContent(`<iframe id="f" src="${baseURL}/settings/users"></iframe>`);
  await page.waitForTimeout(1000);
  const frame = page.frames().find((f) => f.url().includes("/settings/users"));
  const framedText = frame ? await frame.evaluate(() => document.body?.innerText ?? "").catch(() => "") : "";
  expect(framedText).not.toContain("Users");
});
