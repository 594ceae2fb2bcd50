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
