import { test, expect } from "@playwright/test";
import { readFileSync } from "node:fs";
import { signIn } from "./helpers";

// The drops list's "Download CSV": the list as a file, with the filters on the page; the same
// link works without JavaScript. Runs after review.spec.ts, whose first test created the admin
// (the specs run in file-name order).
test("drops list: Download CSV gives the filtered list as a file, with JavaScript on and off", async ({ page, browser }) => {
  await signIn(page);
  await page.goto("/?status=approved");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const shown = await page.locator("tr.drop-row").count();
  expect(shown).toBeGreaterThan(0);
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-csv")]);
  expect(download.suggestedFilename()).toBe("drops.csv");
  const csv = readFileSync((await download.path())!, "utf8");
  const lines = csv.trim().split("\r\n");
  expect(lines[0]).toBe("drop_number,status,project,contractor_phone,contractor_name,round,photo_steps,step_count,open_flags,created_at,activity_at");
  expect(lines.slice(1).every((l) => l.split(",")[1] === "approved")).toBe(true);
  expect(lines.length - 1).toBeGreaterThanOrEqual(shown);

  const ctx = await browser.newContext({ javaScriptEnabled: false, acceptDownloads: true });
  const plain = await ctx.newPage();
  await signIn(plain);
  await plain.goto("/?status=approved");
  const [again] = await Promise.all([plain.waitForEvent("download"), plain.click("#download-csv")]);
  expect(readFileSync((await again.path())!, "utf8")).toBe(csv);
  await ctx.close();
});

// The messages and contacts lists download the same way, with their filters.
test("messages and contacts: Download CSV gives the filtered list, with JavaScript on", async ({ page }) => {
  await signIn(page);
  await page.goto("/messages?direction=out");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const [messages] = await Promise.all([page.waitForEvent("download"), page.click("#download-csv")]);
  expect(messages.suggestedFilename()).toBe("messages.csv");
  const lines = readFileSync((await messages.path())!, "utf8").trim().split("\r\n");
  expect(lines[0]).toBe("id,direction,phone,body,template,status,provider_message_id,error_code,error_text,attempts,drop_number,created_at");
  expect(lines.length).toBeGreaterThan(1);

  await page.click("nav >> a[href='/contacts']");
  await expect(page).toHaveURL(/\/contacts$/);
  await page.fill("#filter-q", "Sipho");
  await page.press("#filter-q", "Enter");
  await expect(page).toHaveURL(/q=Sipho/);
  const shown = await page.locator("#contacts .contact-row").count();
  const [contacts] = await Promise.all([page.waitForEvent("download"), page.click("#download-csv")]);
  expect(contacts.suggestedFilename()).toBe("contacts.csv");
  const rows = readFileSync((await contacts.path())!, "utf8").trim().split("\r\n");
  expect(rows[0].startsWith("phone,name,consent,consent_at,consent_source,tags,birthday,time_zone,opted_out,last_inbound_at,created_at")).toBe(true);
  expect(rows.length - 1).toBe(shown);
  expect(rows.slice(1).every((r) => r.includes("Sipho"))).toBe(true);
});

// The contractor scorecards: reached from /stats, sorted by a column heading (a plain link),
// a row opening the contractor's drops — with the client router, not a full reload.
test("contractor scorecards sort by a column and open a contractor's drops", async ({ page }) => {
  await signIn(page);
  await page.click("nav >> a[href='/stats']");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.click("#scorecards-link");
  await expect(page).toHaveURL(/\/stats\/contractors$/);
  await expect(page.locator("#scorecards .scorecard-row").first()).toBeVisible();
  await page.click("#scorecards a[data-sort=approved]");
  await expect(page).toHaveURL(/sort=approved/);
  await expect(page.locator("#scorecards th[aria-sort=descending]")).toContainText("Approved");
  const approved = await page.locator("#scorecards td[data-col=approved]").allInnerTexts();
  const numbers = approved.map(Number);
  expect([...numbers].sort((a, b) => b - a)).toEqual(numbers);
  const phone = await page.locator("#scorecards .scorecard-row").first().getAttribute("data-phone");
  await page.locator("#scorecards .scorecard-row").first().locator("a").first().click();
  await expect(page).toHaveURL(new RegExp(`contractor=${encodeURIComponent(phone!).replace(/[+]/g, "\\+")}`));
  await expect(page.locator("tr.drop-row").first()).toBeVisible();
});

// A drop's evidence pack downloads from its page (a plain link: the same with JavaScript off).
test("a drop's Evidence pack (PDF) downloads from its page", async ({ page }) => {
  await signIn(page);
  await page.goto("/?status=approved");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await page.locator("tr.drop-row a").first().click();
  await expect(page).toHaveURL(/\/drops\/DR\d+$/);
  const number = page.url().split("/").pop()!;
  const [pdf] = await Promise.all([page.waitForEvent("download"), page.click("#evidence-pdf")]);
  expect(pdf.suggestedFilename()).toBe(`evidence-${number}.pdf`);
  const bytes = readFileSync((await pdf.path())!);
  expect(bytes.subarray(0, 5).toString()).toBe("%PDF-");
  expect(bytes.length).toBeGreaterThan(20_000);
});
